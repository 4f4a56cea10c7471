/**
 * End to end: `worky secret put` (a real CLI process, value on stdin) stores
 * a secret; a real server started on the same config puts it on that
 * tenant's env only; it is in no log line; `secret list` prints names only.
 */
import { afterAll, expect, it } from "vitest";
import { type Fixture, rawRequest, startFixture, writeTree } from "../../_helpers/fixture.ts";
import { runCli } from "../../_helpers/run_cli.ts";

const VALUE = "s3cret-value-marker-42";
let f: Fixture | undefined;
let dir = "";
afterAll(async () => {
  await f?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

const FILES = {
  "show.ts": `export default { fetch: (req, env) => Response.json({ secret: env.API_TOKEN ?? null,
    global: globalThis.API_TOKEN ?? null }) };`,
  "worky.toml": `
[tenants.owner]
module = "show.ts"
routes = ["owner.localhost/*"]
[tenants.other]
module = "show.ts"
routes = ["other.localhost/*"]
`,
};

/** `worky <args>` with no secret key in the environment (the data dir's key file is used). */
function cli(args: string[], stdin?: string) {
  return runCli(args, { env: { WORKY_SECRET_KEY: "" }, stdin });
}

it("put from stdin → on the owner's env only, never logged, listed by name", async () => {
  dir = await writeTree(FILES);
  const config = `${dir}/worky.toml`;
  const put = await cli(["secret", "put", "owner", "API_TOKEN", "--config", config], VALUE + "\n");
  expect(put.stderr).toBe("");
  expect(put.code).toBe(0);
  expect(put.stdout + put.stderr).not.toContain(VALUE);

  const missing = await cli(["secret", "put", "nobody", "X", "--config", config], "v");
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/no tenant "nobody"/);

  const list = await cli(["secret", "list", "owner", "--config", config]);
  expect(list.stdout).toBe("API_TOKEN\n");

  f = await startFixture({}, { dir });
  const owner = JSON.parse((await rawRequest(f.url, "owner.localhost", "/")).body);
  const other = JSON.parse((await rawRequest(f.url, "other.localhost", "/")).body);
  expect(owner).toEqual({ secret: VALUE, global: null });
  expect(other).toEqual({ secret: null, global: null });
  expect(JSON.stringify(f.logger.entries)).not.toContain(VALUE);
  await f.close();
  f = undefined;

  const del = await cli(["secret", "delete", "owner", "API_TOKEN", "--config", config]);
  expect(del.code).toBe(0);
  expect((await cli(["secret", "list", "owner", "--config", config])).stdout).toBe("");
}, 60_000);
