/**
 * Every command's bad-argument path, through the real `cli/main.ts` child process: a
 * non-zero exit code and the error as the one last line of stderr (progress lines, if any,
 * come before it).
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeTree } from "../_helpers/fixture.ts";
import { runCli } from "../_helpers/run_cli.ts";

let dir: string;
beforeAll(async () => {
  dir = await writeTree({
    "worky.toml":
      `[server]\ndata_dir = "state"\n[tenants.shop]\nmodule = "mod.ts"\nroutes = ["*/shop/*"]\n`,
    "mod.ts": "export default { fetch: () => new Response('ok') };\n",
    "garbage.json": "not json",
  });
});
afterAll(() => Deno.remove(dir, { recursive: true }));

const CASES: [string, string[], RegExp][] = [
  ["unknown command", ["frobnicate"], /unknown command 'frobnicate'/],
  ["build: missing target", ["build"], /missing required argument 'target'/],
  ["build: no such folder", ["build", "nope"], /ERR_BAD_REQUEST: .*nope does not exist/],
  [
    "build: bad name",
    ["build", "mod.ts", "--name", "NoScope", "--pkg-version", "1.0.0"],
    /"NoScope" is not a package name/,
  ],
  [
    "build: bad key file",
    ["build", "mod.ts", "--key", "garbage.json"],
    /key file garbage\.json is not JSON/,
  ],
  [
    "keygen: file exists",
    ["keygen", "-o", "mod.ts"],
    /ERR_CONFLICT: mod\.ts already exists \(pass --force/,
  ],
  [
    "publish: missing --registry",
    ["publish", "."],
    /required option '--registry <url>' not specified/,
  ],
  [
    "publish: bad URL",
    ["publish", ".", "--registry", "ftp://x"],
    /"ftp:\/\/x" is not an http\(s\) URL/,
  ],
  [
    "publish: no token",
    ["publish", ".", "--registry", "http://127.0.0.1:9"],
    /ERR_UNAUTHORIZED: publish needs an API token/,
  ],
  ["publish: no key for source", [
    "publish",
    ".",
    "--registry",
    "http://127.0.0.1:9",
    "--token",
    "t",
  ], /a signing key is needed/],
  [
    "pull: bad ref",
    ["pull", "acme", "--registry", "http://127.0.0.1:9"],
    /"acme" is not a package name/,
  ],
  [
    "pull: unreachable registry",
    ["pull", "acme/x@^1", "--registry", "http://127.0.0.1:9"],
    /ERR_UNAVAILABLE: cannot reach http:\/\/127\.0\.0\.1:9/,
  ],
  ["deploy: bad tenant", ["deploy", "Shop", "acme/x@1.0.0"], /"Shop" is not a tenant name/],
  ["deploy: bad range", ["deploy", "shop", "acme/x@>>1"], /neither a semver range nor a dist-tag/],
  [
    "deploy: unknown tenant",
    ["deploy", "nobody", "acme/x@1.0.0"],
    /ERR_NOT_FOUND: no tenant named "nobody"/,
  ],
  [
    "deploy: nothing pulled",
    ["deploy", "shop", "acme/x@1.0.0"],
    /ERR_NOT_FOUND: no artifact of acme\/x here/,
  ],
  ["deploy: --remote without token", [
    "deploy",
    "shop",
    "acme/x@1.0.0",
    "--remote",
    "http://127.0.0.1:9",
  ], /needs an API token/],
  [
    "rollback: nothing to roll back",
    ["rollback", "shop"],
    /ERR_CONFLICT: tenant "shop" has no previous version/,
  ],
  ["deployments: missing tenant", ["deployments"], /missing required argument 'tenant'/],
  [
    "deployments: missing config",
    ["deployments", "shop", "-c", "nope.toml"],
    /ERR_CONFIG_INVALID: cannot read config file .*nope\.toml: no such file/,
  ],
  [
    "token create: bad scope",
    ["token", "create", "--scope", "root"],
    /"root" is not a scope \(expected publish, deploy, admin\)/,
  ],
  [
    "token create: no scope",
    ["token", "create"],
    /required option '--scope <scope>' not specified/,
  ],
  [
    "token revoke: unknown id",
    ["token", "revoke", "abc"],
    /ERR_NOT_FOUND: no active token with id "abc"/,
  ],
  ["compile: no output", ["compile"], /required option '-o, --output <file>' not specified/],
  [
    "compile: DENORT_BIN missing",
    ["compile", "-o", "out/worky"],
    /DENORT_BIN=\/nonexistent\/denort is not a file: deno compile needs denort/,
  ],
];

describe("bad arguments: non-zero exit, one readable line", () => {
  test.each(CASES)("%s", async (_what, args, message) => {
    const r = await runCli(args, { cwd: dir, env: { DENORT_BIN: "/nonexistent/denort" } });
    expect(r.code, r.stderr).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    // the root command adds commander's "(run with --help for usage)" hint after its error
    const last = lines.at(-1) === "(run with --help for usage)" ? lines.at(-2)! : lines.at(-1)!;
    expect(last).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack traces
  });
});

describe("every command has --help with an example", () => {
  const commands = [
    ["build"],
    ["keygen"],
    ["publish"],
    ["pull"],
    ["deploy"],
    ["rollback"],
    ["deployments"],
    ["token"],
    ["token", "create"],
    ["token", "list"],
    ["token", "revoke"],
    ["compile"],
    ["dev"],
    ["serve"],
  ];
  test.each(commands)("%s %s", async (...cmd) => {
    const r = await runCli([...cmd.filter(Boolean), "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Example:\n {2}worky /);
  });
});

describe("tokens, locally", () => {
  test("create prints the token once; list shows no secrets; revoke", async () => {
    const c = await runCli([
      "token",
      "create",
      "--scope",
      "deploy",
      "--tenant",
      "shop",
      "--description",
      "ci",
    ], { cwd: dir });
    expect(c.code, c.stderr).toBe(0);
    const token = c.stdout.trim();
    expect(token).toMatch(/^wky_[0-9a-f]{12}_[0-9a-f]{48}$/);
    const id = token.split("_")[1];
    const l = await runCli(["token", "list"], { cwd: dir });
    expect(l.stdout).toMatch(new RegExp(`${id}\\s+deploy\\s+shop\\s+\\S+\\s+-\\s+ci`));
    expect(l.stdout).not.toContain(token.split("_")[2]);
    const db = await Deno.readFile(`${dir}/state/worky.db`).catch(() => new Uint8Array());
    expect(new TextDecoder().decode(db)).not.toContain(token);
    const r = await runCli(["token", "revoke", id], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const again = await runCli(["token", "revoke", id], { cwd: dir });
    expect(again.code).toBe(1);
  });
});
