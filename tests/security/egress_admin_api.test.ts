/**
 * A tenant tries to reach the control plane's admin API (`/_worky/*` on the
 * Worky port) from inside: by 127.0.0.1, by host name, and even with a config
 * that names 127.0.0.1 explicitly (the control plane port is never allowed).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

let f: Fixture;
beforeAll(async () => {
  const fetchFromQuery = attackModule(`
    const res = await fetch(new URL(request.url).searchParams.get("to"));
    return { status: res.status, text: await res.text() };
  `);
  f = await startTenants({
    evil: { module: fetchFromQuery, toml: `[tenants.evil.permissions]\nnet = true\n` },
    named: {
      module: fetchFromQuery,
      toml: `[tenants.named.permissions]\nnet = ["127.0.0.1", "localhost"]\n` +
        `[tenants.named.egress]\nallow_private = ["127.0.0.0/8"]\n`,
    },
  });
});
afterAll(() => f?.close());

it("control: the admin API answers the host", async () => {
  expect((await f.fetch("/_worky/health")).status).toBe(200);
});

for (
  const [tenant, host] of [
    ["evil", "127.0.0.1"],
    ["evil", Deno.hostname()],
    ["named", "127.0.0.1"],
    ["named", "localhost"],
  ] as const
) {
  attempt(`${tenant} tenant fetches http://${host}:<worky port>/_worky/health`, async () => {
    const to = `http://${host}:${new URL(f.url).port}/_worky/health`;
    const { body } = await ask(f, tenant, `/?to=${encodeURIComponent(to)}`);
    expect(body.ok).toBe(false);
    expect(body.code).toBe("ERR_PERMISSION_DENIED");
  });
}
