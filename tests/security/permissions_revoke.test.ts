/**
 * A tenant revokes permissions (read, net, env, run, write, sys, ffi, all):
 * the host keeps every one, and so does another tenant that was granted read.
 */
import { afterAll, beforeAll, expect } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const dir = Deno.makeTempDirSync({ prefix: "worky-revoke-" });
Deno.writeTextFileSync(`${dir}/data.txt`, "readable");
let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    evil: {
      module: attackModule(`
        const out = [];
        for (const name of ["read", "write", "net", "env", "run", "sys", "ffi", "import"]) {
          out.push(name + ":" + (await Deno.permissions.revoke({ name })).state);
        }
        return out;
      `),
      toml: `[tenants.evil.permissions]\nread = ["${dir}"]\nnet = true\n`,
    },
    reader: {
      module: attackModule(`return await Deno.readTextFile("${dir}/data.txt");`),
      toml: `[tenants.reader.permissions]\nread = ["${dir}"]\n`,
    },
  });
});
afterAll(() => f?.close());

const KEYS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;

attempt("Deno.permissions.revoke from a tenant reaches the host or another tenant", async () => {
  const before = KEYS.map((name) => Deno.permissions.querySync({ name }).state);
  const { body } = await ask(f, "evil");
  expect(body.ok).toBe(true); // the revoke calls ran (on the tenant's own state)
  const after = KEYS.map((name) => Deno.permissions.querySync({ name }).state);
  expect(after).toEqual(before);
  expect(after.every((s) => s === "granted")).toBe(true);
  expect((await ask(f, "reader")).body).toEqual({ ok: true, value: "readable" });
  expect((await f.fetch("/_worky/health")).status).toBe(200);
});
