/**
 * `worky compile`: the staged entrypoint serves the tenants when run with `deno run` from a
 * folder that holds only the files deno compile would embed (the entry's module graph, the
 * worker bootstrap's graph, the embedded artifacts and config) — not the source tree. npm
 * packages come from a `node_modules` link, as deno compile embeds them from there.
 * The real `deno compile` needs denort, which no machine here can download: its failure
 * must say exactly that.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { dirname, join, relative } from "node:path";
import { rawRequest, until, writeTree } from "../_helpers/fixture.ts";
import { runCli } from "../_helpers/run_cli.ts";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { type CompileStage, REPO_ROOT, stageCompile } from "../../cli/commands/compile.ts";

let dir: string;
let stage: CompileStage;
let copy: string;

/** Local files deno compile embeds: every file: module reachable from `roots`. */
async function moduleGraph(roots: string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const root of roots) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    expect(out.success, new TextDecoder().decode(out.stderr)).toBe(true);
    const info = JSON.parse(new TextDecoder().decode(out.stdout));
    for (const m of info.modules) {
      if (
        typeof m.local === "string" && m.specifier.startsWith("file:") &&
        !m.local.includes("/node_modules/")
      ) {
        files.add(m.local);
      }
    }
  }
  return [...files];
}

async function walk(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) {
    const p = join(path, e.name);
    if (e.isDirectory) out.push(...await walk(p));
    else out.push(p);
  }
  return out;
}

beforeAll(async () => {
  dir = await writeTree({
    "worky.toml":
      `[tenants.hello]\nmodule = "hello/mod.ts"\nroutes = ["hello.localhost/*"]\nvars = { WHO = "compiled" }\n` +
      `[tenants.count]\nmodule = "count.ts"\nroutes = ["*/count/*"]\nkv = ["N"]\n`,
    "hello/mod.ts":
      `import { msg } from "./msg.ts";\nexport default { fetch: (_r: Request, env: { WHO: string }) => new Response(msg(env.WHO)) };\n`,
    "hello/msg.ts": `export const msg = (w: string) => "hello from " + w;\n`,
    "count.ts":
      `export default { async fetch(_r: Request, env: any) { const n = Number(await env.N.get("n") ?? 0) + 1; await env.N.put("n", String(n)); return new Response(String(n)); } };\n`,
  });
  stage = await stageCompile(await loadConfig(`${dir}/worky.toml`, { env: {} }), {});
  // copy only what compile embeds, at the same paths relative to the repository
  copy = await Deno.makeTempDir({ prefix: "worky-compiled-" });
  const files = [
    ...await moduleGraph([stage.entry, ...stage.includes.filter((p) => p.endsWith(".ts"))]),
    ...(await Promise.all(stage.includes.filter((p) => !p.endsWith(".ts")).map(walk))).flat(),
  ];
  for (const file of files) {
    const to = join(copy, relative(REPO_ROOT, file));
    await Deno.mkdir(dirname(to), { recursive: true });
    await Deno.copyFile(file, to);
  }
  for (const f of ["deno.json", "package.json"]) {
    await Deno.copyFile(join(REPO_ROOT, f), join(copy, f));
  }
  await Deno.symlink(join(REPO_ROOT, "node_modules"), join(copy, "node_modules"));
});

afterAll(async () => {
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(stage.dir, { recursive: true });
  await Deno.remove(copy, { recursive: true });
});

describe("compile", () => {
  test("stages signed artifacts and a config pointing at them", async () => {
    expect(stage.tenants).toEqual({ count: "compiled/count@0.0.0", hello: "compiled/hello@0.0.0" });
    const config = JSON.parse(await Deno.readTextFile(`${stage.dir}/embedded/config.json`));
    expect(config.tenants.hello.module).toBe("registry:compiled/hello@0.0.0");
    expect(config.registry.trusted_keys).toHaveLength(1);
    expect(stage.includes.map((p) => relative(REPO_ROOT, p))).toEqual([
      "runtime/bootstrap.worker.ts",
      "control-plane/storage/migrations",
      relative(REPO_ROOT, `${stage.dir}/embedded`),
    ]);
  });

  test("the embedded entrypoint serves the tenants from a copy of only the embedded files", async () => {
    expect(await Deno.stat(join(copy, "cli/compiled_main.ts"))).toBeTruthy();
    await expect(Deno.stat(join(copy, "cli/main.ts"))).rejects.toThrow(); // not the source tree
    await expect(Deno.stat(join(copy, "examples"))).rejects.toThrow();
    const data = await Deno.makeTempDir({ prefix: "worky-compiled-data-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-worker-options",
        join(copy, relative(REPO_ROOT, stage.entry)),
        "--port",
        "0",
        "--data-dir",
        data,
      ],
      cwd: data,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let stderr = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    const pump = (async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += r.value;
    })();
    try {
      let exited = false;
      child.status.then(() => exited = true);
      await until(() => /serving 2 tenant\(s\) on (http:\/\/\S+)/.test(stderr) || exited, 20_000)
        .catch(() => {});
      expect(stderr).toMatch(/serving 2 tenant\(s\) on/);
      const url = /serving 2 tenant\(s\) on (http:\/\/\S+)/.exec(stderr)![1];
      const hello = await rawRequest(url, "hello.localhost", "/");
      expect(hello.status).toBe(200);
      expect(hello.body).toBe("hello from compiled");
      expect(await (await fetch(`${url}/count/`)).text()).toBe("1");
      expect(await (await fetch(`${url}/count/`)).text()).toBe("2");
      expect(stderr).not.toMatch(/UNSIGNED/);
      expect((await Deno.stat(join(data, "worky.db"))).isFile).toBe(true);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.status;
      await pump;
      await Deno.remove(data, { recursive: true });
    }
  });

  test("without denort, worky compile fails saying exactly that", async () => {
    const r = await runCli(
      ["compile", "--config", `${dir}/worky.toml`, "-o", `${dir}/dist/worky`],
      {
        env: { DENORT_BIN: "" },
      },
    );
    if (r.code === 0) {
      // a machine that can reach dl.deno.land really compiles
      expect((await Deno.stat(`${dir}/dist/worky`)).isFile).toBe(true);
      return;
    }
    const last = r.stderr.trim().split("\n").at(-1)!;
    expect(last).toMatch(
      /^worky: ERR_UNAVAILABLE: deno compile needs denort .* set DENORT_BIN=\/path\/to\/denort$/,
    );
  });
});
