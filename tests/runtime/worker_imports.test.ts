/**
 * The `*.worker.ts` rule: code that runs inside tenant workers loads no host
 * module. Every module a worker file imports at run time (type-only imports
 * are erased), directly or not, is another `*.worker.ts`, a builtin (`node:…`),
 * or a protocol module (`runtime/protocol.ts`, a `types.ts` under `runtime/`)
 * that itself imports nothing at run time.
 */
import { expect, it } from "vitest";
import { relative } from "node:path";
import { REPO } from "../_helpers/fixture.ts";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string } }[];
}

/** `deno info --json` of one root: specifier → the specifiers it imports at run time. */
async function runtimeImports(root: string): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  expect(out.success, new TextDecoder().decode(out.stderr)).toBe(true);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  return new Map(
    info.modules.map((m) => [
      m.specifier,
      (m.dependencies ?? []).flatMap((d) => d.code ? [d.code.specifier] : []),
    ]),
  );
}

const isProtocol = (path: string) =>
  path === "runtime/protocol.ts" || (path.startsWith("runtime/") && path.endsWith("/types.ts"));

async function workerFiles(dir = `${REPO}runtime`): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...await workerFiles(`${dir}/${e.name}`));
    else if (e.name.endsWith(".worker.ts")) out.push(`${dir}/${e.name}`);
  }
  return out.sort();
}

it("worker files import only worker files, builtins and protocol modules at run time", async () => {
  const files = await workerFiles();
  expect(files.length).toBeGreaterThan(10);
  const violations: string[] = [];
  for (const file of files) {
    const graph = await runtimeImports(file);
    // walk run-time edges only: a type-only import brings its module into deno info's graph
    const queue = [new URL(`file://${file}`).href];
    const seen = new Set(queue);
    while (queue.length) {
      const from = queue.shift()!;
      const fromPath = relative(REPO, new URL(from).pathname);
      for (const spec of graph.get(from) ?? []) {
        if (!spec.startsWith("file:")) {
          if (!spec.startsWith("node:")) violations.push(`${fromPath} → ${spec}`);
          continue;
        }
        const path = relative(REPO, new URL(spec).pathname);
        const allowed = path.endsWith(".worker.ts") ||
          (isProtocol(path) && (graph.get(spec) ?? []).length === 0);
        if (!allowed) violations.push(`${fromPath} → ${path}`);
        if (!seen.has(spec)) {
          seen.add(spec);
          queue.push(spec);
        }
      }
    }
  }
  expect([...new Set(violations)]).toEqual([]);
});
