/**
 * A tenant with `net = true` fetches a real server on 127.0.0.1 (and the same
 * address spelled as `2130706433`, `[::ffff:127.0.0.1]`, `0.0.0.0`, `127.1`):
 * refused before any connection; the server sees no request. A tenant whose
 * config names that address reaches it (the control: the path works).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { startTarget, type Target } from "./_target.ts";
import { attempt } from "./_summary.ts";

let f: Fixture;
let target: Target;
beforeAll(async () => {
  target = await startTarget();
  const fetchFromQuery = attackModule(`
    const to = new URL(request.url).searchParams.get("to");
    const res = await fetch(to);
    return { status: res.status, text: await res.text() };
  `);
  f = await startTenants({
    evil: { module: fetchFromQuery, toml: `[tenants.evil.permissions]\nnet = true\n` },
    allowed: {
      module: fetchFromQuery,
      toml: `[tenants.allowed.permissions]\nnet = ["127.0.0.1:${target.port}"]\n`,
    },
  });
});
afterAll(async () => {
  await f?.close();
  await target?.close();
});

for (const host of ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "127.1", "0x7f.0.0.1"]) {
  attempt(`fetch loopback as ${host}`, async () => {
    const to = `http://${host}:${target.port}/`;
    const { status, body } = await ask(f, "evil", `/?to=${encodeURIComponent(to)}`);
    expect(status).toBe(200);
    expect(body.ok).toBe(false);
    expect(body.code).toBe("ERR_PERMISSION_DENIED");
    expect(String(body.message)).toMatch(/loopback/);
    expect(target.hits).toBe(0);
  });
}

attempt("fetch 0.0.0.0 (reaches the local host)", async () => {
  const { body } = await ask(
    f,
    "evil",
    `/?to=${encodeURIComponent(`http://0.0.0.0:${target.port}/`)}`,
  );
  expect(body.ok).toBe(false);
  expect(body.code).toBe("ERR_PERMISSION_DENIED");
  expect(target.hits).toBe(0);
});

it("control: an address named in permissions.net is reachable", async () => {
  const { body } = await ask(f, "allowed", `/?to=${encodeURIComponent(`${target.url}/`)}`);
  expect(body).toEqual({ ok: true, value: { status: 200, text: "reached" } });
  expect(target.hits).toBe(1);
});
