/**
 * Two real control planes on ephemeral ports: publish to A with `worky publish`, pull from A
 * into B's cache with `worky pull`, deploy on B with `worky deploy --remote`, all over HTTP
 * through the real CLI. Then: deploy under load, rollback, restart, tampered artifacts,
 * tenant-scoped tokens, concurrent publishes.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REPO, until, writeTree } from "../../_helpers/fixture.ts";
import { runCli } from "../../_helpers/run_cli.ts";
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer, type WorkyServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";
import { generateKeyFile, type KeyFile } from "../../../runtime/artifact/signing.ts";
import { readArtifactDir, writeArtifactDir } from "../../../runtime/artifact/artifact.ts";
import { formatManifest } from "../../../runtime/artifact/manifest.ts";

let root: string;
let key: KeyFile;
let untrusted: KeyFile;
let a: WorkyServer;
let b: WorkyServer;
let publishToken: string; // on A
let deployToken: string; // on B
const logger = new MemoryLogger();

const project = (version: string, body: string) => ({
  [`proj-${version}/worky.json`]: JSON.stringify({ name: "acme/shop", version, kv: ["COUNTS"] }),
  [`proj-${version}/mod.ts`]:
    `export default { async fetch() { await new Promise((r) => setTimeout(r, 2)); return new Response(${
      JSON.stringify(body)
    }); } };\n`,
});

async function start(config: string): Promise<WorkyServer> {
  return await startServer({
    config: await loadConfig(config, { env: {} }),
    port: 0,
    hostname: "127.0.0.1",
    logger,
    spares: 0,
  });
}

const lastLine = (text: string) => text.trim().split("\n").at(-1);

/** `worky deploy <tenant> <ref> --remote <B> --token <deploy token>`. */
const deploy = (tenant: string, ref: string) =>
  runCli(["deploy", tenant, ref, "--remote", b.url, "--token", deployToken]);

/** `worky publish <dir> --registry <A> --token <token> --key key.json`. */
const publish = (dir: string, token: string) =>
  runCli(["publish", dir, "--registry", a.url, "--token", token, "--key", `${root}/key.json`]);

const shop = (path = "/shop/") =>
  fetch(`${b.url}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }));

beforeAll(async () => {
  key = await generateKeyFile();
  untrusted = await generateKeyFile();
  root = await writeTree({
    "a/worky.toml": `[server]\ndata_dir = "state"\n`,
    "b/worky.toml":
      `[server]\ndata_dir = "state"\n[registry]\ntrusted_keys = ["${key.publicKey}"]\n` +
      `[tenants.shop]\nmodule = "v0.ts"\nroutes = ["*/shop/*"]\nkv = ["COUNTS"]\n` +
      `[tenants.other]\nmodule = "v0.ts"\nroutes = ["*/other/*"]\n`,
    "b/v0.ts": `export default { fetch: () => new Response("v0") };\n`,
    "key.json": JSON.stringify(key),
    "untrusted.json": JSON.stringify(untrusted),
    ...project("1.0.0", "v1"),
    ...project("1.1.0", "v2"),
  });
  a = await start(`${root}/a/worky.toml`);
  b = await start(`${root}/b/worky.toml`);
  const t1 = await runCli([
    "token",
    "create",
    "--scope",
    "publish",
    "--config",
    `${root}/a/worky.toml`,
  ]);
  expect(t1.code, t1.stderr).toBe(0);
  publishToken = t1.stdout.trim();
  const t2 = await runCli([
    "token",
    "create",
    "--scope",
    "deploy",
    "--tenant",
    "shop",
    "--config",
    `${root}/b/worky.toml`,
  ]);
  expect(t2.code, t2.stderr).toBe(0);
  deployToken = t2.stdout.trim();
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await Deno.remove(root, { recursive: true });
});

describe("publish → pull → deploy across two control planes", () => {
  test("publish both versions to A; a second publish of a version fails clearly", async () => {
    for (const v of ["1.0.0", "1.1.0"]) {
      const r = await publish(`${root}/proj-${v}`, publishToken);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(`acme/shop@${v}`);
    }
    const again = await publish(`${root}/proj-1.0.0`, publishToken);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /ERR_CONFLICT: .*acme\/shop@1\.0\.0 is already published; versions are immutable/,
    );
    const list = await (await fetch(`${a.url}/_worky/registry/packages`)).json();
    expect(list.packages).toEqual([{
      name: "acme/shop",
      versions: ["1.0.0", "1.1.0"],
      tags: { latest: "1.1.0" },
    }]);
    const resolved =
      await (await fetch(`${a.url}/_worky/registry/packages/acme/shop/resolve?range=~1.0.0`))
        .json();
    expect(resolved).toEqual({ name: "acme/shop", version: "1.0.0" });
    const tagged =
      await (await fetch(`${a.url}/_worky/registry/packages/acme/shop/resolve?range=latest`))
        .json();
    expect(tagged.version).toBe("1.1.0");
  });

  test("pull verifies and caches on B; deploy switches B over HTTP", async () => {
    for (const ref of ["acme/shop@1.0.0", "acme/shop@^1.1"]) {
      const r = await runCli([
        "pull",
        ref,
        "--registry",
        a.url,
        "--config",
        `${root}/b/worky.toml`,
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await Deno.stat(`${root}/b/state/artifacts/acme/shop/1.1.0/module.js.map`)).isFile)
      .toBe(true);
    expect(await shop()).toEqual({ status: 200, body: "v0" });
    const d = await deploy("shop", "acme/shop@1.0.0");
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout.trim()).toBe("acme/shop@1.0.0");
    expect(await shop()).toEqual({ status: 200, body: "v1" });
  });

  test("deploy under load: every request is 200 and versions never mix or go back", async () => {
    const seen: string[] = [];
    let stop = false;
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const r = await shop();
        expect(r.status).toBe(200);
        seen.push(r.body);
      }
    });
    await until(() => seen.length >= 20);
    const d = await deploy("shop", "acme/shop@^1.1");
    expect(d.code, d.stderr).toBe(0);
    const at = seen.length;
    await until(() => seen.length >= at + 40);
    stop = true;
    await Promise.all(loops);
    expect(new Set(seen)).toEqual(new Set(["v1", "v2"]));
    // after the deploy returned, every request started later sees v2 (4 may have been in flight)
    expect(seen.slice(at + 4).every((v) => v === "v2")).toBe(true);
  });

  test("rollback returns to the previous version at once; history lists both", async () => {
    const r = await runCli(["rollback", "shop", "--remote", b.url, "--token", deployToken]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("acme/shop@1.0.0");
    expect(await shop()).toEqual({ status: 200, body: "v1" });
    const h = await runCli(["deployments", "shop", "--remote", b.url, "--token", deployToken]);
    expect(h.code, h.stderr).toBe(0);
    const lines = h.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/ID\s+WHEN\s+ACTION\s+REF\s+PREVIOUS\s+BY/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).filter(Boolean).slice(0, 6))).toEqual([
      ["*", "3", expect.any(String), "rollback", "acme/shop@1.0.0", "acme/shop@1.1.0"],
      ["2", expect.any(String), "deploy", "acme/shop@1.1.0", "acme/shop@1.0.0", expect.any(String)],
      ["1", expect.any(String), "deploy", "acme/shop@1.0.0", "-", expect.any(String)],
    ]);
  });

  test("a tenant-scoped token can't deploy another tenant; a wrong scope can't publish", async () => {
    const r = await deploy("other", "acme/shop@1.0.0");
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(
      /^worky: ERR_FORBIDDEN: .*acts for tenant "shop", not "other"$/,
    );
    const p = await publish(`${root}/proj-1.0.0`, deployToken);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/ERR_UNAUTHORIZED: .*unknown or revoked/); // B's token means nothing to A
    const none = await fetch(`${b.url}/_worky/api/tenants/shop/rollback`, { method: "POST" });
    expect(none.status).toBe(401);
  });

  test("tampered artifacts are refused by name and the running version keeps serving", async () => {
    const cache = `${root}/b/state/artifacts/acme/shop/1.1.0`;
    const pristine = await readArtifactDir(cache);
    const enc = (s: string) => new TextEncoder().encode(s);
    const cases: [string, () => Promise<void>, RegExp][] = [
      ["module byte", async () => {
        const bytes = pristine.files["module.js"].slice();
        bytes[3] ^= 1;
        await Deno.writeFile(`${cache}/module.js`, bytes);
      }, /file module\.js does not match/],
      [
        "source map",
        () => Deno.writeFile(`${cache}/module.js.map`, enc("{}")),
        /file module\.js\.map does not match/,
      ],
      [
        "swapped module",
        () =>
          Deno.writeFile(
            `${cache}/module.js`,
            enc("export default { fetch: () => new Response('evil') };"),
          ),
        /module\.js does not match/,
      ],
      [
        "manifest field",
        () =>
          Deno.writeTextFile(
            `${cache}/manifest.json`,
            formatManifest({ ...pristine.manifest, crons: ["* * * * *"] }),
          ),
        /signature does not match/,
      ],
      [
        "missing signature",
        () =>
          Deno.writeTextFile(
            `${cache}/manifest.json`,
            formatManifest({ ...pristine.manifest, signature: undefined }),
          ),
        /is not signed/,
      ],
      ["wrong key", async () => {
        const { importKeyFile, signManifest } = await import(
          "../../../runtime/artifact/signing.ts"
        );
        const other = await importKeyFile(JSON.stringify(untrusted), "u");
        await Deno.writeTextFile(
          `${cache}/manifest.json`,
          formatManifest(await signManifest(pristine.manifest, other)),
        );
      }, /which is not a trusted key/],
    ];
    for (const [what, tamper, message] of cases) {
      await writeArtifactDir(cache, pristine);
      await tamper();
      const res = await fetch(`${b.url}/_worky/api/tenants/shop/deploy`, {
        method: "POST",
        headers: { authorization: `Bearer ${deployToken}`, "content-type": "application/json" },
        body: JSON.stringify({ ref: "acme/shop@1.1.0" }),
      });
      const body = await res.json();
      expect(res.status, what).toBe(422);
      expect(body.error.code, what).toBe("ERR_BUNDLE_TAMPERED");
      expect(body.error.message, what).toMatch(/artifact acme\/shop@1\.1\.0/);
      expect(body.error.message, what).toMatch(message);
      expect(await shop(), what).toEqual({ status: 200, body: "v1" });
    }
    await writeArtifactDir(cache, pristine);
    const pull = await runCli([
      "pull",
      "acme/shop@1.0.0",
      "--registry",
      a.url,
      "--config",
      `${root}/a/worky.toml`,
    ]);
    expect(pull.code).toBe(1); // A trusts no key
    expect(lastLine(pull.stderr)).toMatch(
      /^worky: ERR_BUNDLE_TAMPERED: artifact acme\/shop@1\.0\.0 from http.* is signed by ed25519:.*not a trusted key/,
    );
  });

  test("the active version survives a restart (it overrides worky.toml's module)", async () => {
    await b.close();
    // and a tenant whose module is a registry spec, resolved from the pull cache at start
    await Deno.writeTextFile(
      `${root}/b/worky.toml`,
      `[tenants.reg]\nmodule = "registry:acme/shop@~1.1"\nroutes = ["*/reg/*"]\nkv = ["COUNTS"]\n`,
      { append: true },
    );
    b = await start(`${root}/b/worky.toml`);
    expect(await shop()).toEqual({ status: 200, body: "v1" });
    expect(await shop("/reg/")).toEqual({ status: 200, body: "v2" });
    expect(await (await fetch(`${b.url}/other/`)).text()).toBe("v0");
    expect(
      logger.entries.some((l) =>
        String(l.msg).includes(`tenant "other" runs UNSIGNED local source`)
      ),
    ).toBe(true);
  });
});

describe("registry rules", () => {
  test("worky.toml registry specs are checked by format; artifacts must be granted what they ask", async () => {
    const dir = await writeTree({
      "worky.toml": `[tenants.x]\nmodule = "registry:Acme@^1"\nroutes = ["*/x/*"]\n` +
        `[tenants.y]\nmodule = "registry:acme/y@>>1"\nroutes = ["*/y/*"]\n`,
    });
    try {
      const err = await loadConfig(`${dir}/worky.toml`, { env: {} }).catch((e) => e);
      expect(err.message).toMatch(
        /worky\.toml:2: tenants\.x\.module: "registry:Acme@\^1": "Acme" is not a package name/,
      );
      expect(err.message).toMatch(
        /worky\.toml:5: tenants\.y\.module: .*">>1" is neither a semver range nor a dist-tag/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // "other" doesn't grant the COUNTS binding acme/shop asks for
    const { token } = await b.registry.tokens.create({ scope: "deploy" });
    const res = await fetch(`${b.url}/_worky/api/tenants/other/deploy`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ ref: "acme/shop@1.0.0" }),
    });
    expect(res.status).toBe(403);
    expect((await res.json()).error.message).toMatch(
      /artifact acme\/shop@1\.0\.0 asks for kv \["COUNTS"\], which tenant "other" does not grant/,
    );
    expect(await (await fetch(`${b.url}/other/`)).text()).toBe("v0");
  });

  test("two concurrent publishes of one version: exactly one wins", async () => {
    const p = await writeTree(project("2.0.0", "v3"));
    try {
      const results = await Promise.all(
        [0, 1].map(() => publish(`${p}/proj-2.0.0`, publishToken)),
      );
      expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
      expect(results.find((r) => r.code === 1)!.stderr).toMatch(
        /ERR_CONFLICT: .*acme\/shop@2\.0\.0 is already published/,
      );
      const pkg = await (await fetch(`${a.url}/_worky/registry/packages/acme/shop`)).json();
      expect(pkg.versions.filter((v: string) => v === "2.0.0")).toHaveLength(1);
    } finally {
      await Deno.remove(p, { recursive: true });
    }
  });

  test("tenant-scoped publish tokens publish only their own scope", async () => {
    const { token } = await a.registry.tokens.create({ scope: "publish", tenant: "globex" });
    const r = await publish(`${root}/proj-1.0.0`, token);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /ERR_FORBIDDEN: .*acts for tenant "globex" and can't publish acme\/shop/,
    );
  });

  test("name, version, range and size limits answer clear errors", async () => {
    const auth = { authorization: `Bearer ${publishToken}` };
    const bad = await fetch(`${a.url}/_worky/registry/packages/Acme/x`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/"Acme\/x" is not a package name/);
    const range = await fetch(`${a.url}/_worky/registry/packages/acme/shop/resolve?range=>>1`);
    expect((await range.json()).error.message).toMatch(/neither a semver range nor a dist-tag/);
    const none = await fetch(`${a.url}/_worky/registry/packages/acme/shop/resolve?range=^9`);
    expect(none.status).toBe(404);
    expect((await none.json()).error.message).toMatch(
      /no version of acme\/shop matches "\^9" \(have 1\.0\.0, 1\.1\.0/,
    );
    const missing = await fetch(`${a.url}/_worky/registry/packages/acme/shop/1.0`, {
      method: "PUT",
      headers: auth,
      body: new FormData(),
    });
    expect(missing.status).toBe(400);
    const big = new Uint8Array(26 * 1024 * 1024);
    const form = new FormData();
    form.set("module.js", new Blob([big]), "module.js");
    const tooBig = await fetch(`${a.url}/_worky/registry/packages/acme/shop/9.0.0`, {
      method: "PUT",
      headers: auth,
      body: form,
    });
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error.message).toMatch(/exceeds the 26214400-byte artifact limit/);
  });
});

void REPO;
