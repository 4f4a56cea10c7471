/**
 * Reaching 127.0.0.1 indirectly from a tenant with `net = true`: through a
 * DNS name that resolves there (this machine's host name, `localhost`,
 * `*.localhost`), and through redirects from a server the tenant may reach
 * (to a loopback IP, to such a name, to the metadata address). No request
 * reaches the target.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { startTarget, type Target } from "./_target.ts";
import { attempt } from "./_summary.ts";

let f: Fixture;
let target: Target;
let redirector: Target;
const hostName = Deno.hostname();

beforeAll(async () => {
  target = await startTarget();
  redirector = await startTarget((req) => {
    const to = new URL(req.url).searchParams.get("to")!;
    return new Response(null, {
      status: Number(new URL(req.url).searchParams.get("s") ?? 302),
      headers: { location: to },
    });
  });
  const fetchFromQuery = attackModule(`
    const q = new URL(request.url).searchParams;
    const res = await fetch(q.get("to"), { method: q.get("m") ?? "GET", body: q.get("body") ?? undefined });
    return { status: res.status, text: await res.text() };
  `);
  f = await startTenants({
    evil: {
      module: fetchFromQuery,
      toml:
        `[tenants.evil.permissions]\nnet = true\n[tenants.evil.egress]\nallow_private = ["127.0.0.1:${redirector.port}"]\n`,
    },
    allowed: {
      module: fetchFromQuery,
      toml: `[tenants.allowed.permissions]\nnet = ["127.0.0.1"]\n`,
    },
  });
});
afterAll(async () => {
  await f?.close();
  await target?.close();
  await redirector?.close();
});

async function tryFetch(to: string) {
  target.hits = 0;
  return await ask(f, "evil", `/?to=${encodeURIComponent(to)}`);
}

it("the host name resolves to loopback here (the premise of the DNS attempt)", async () => {
  const { lookup } = await import("node:dns/promises");
  const addrs = (await lookup(hostName, { all: true })).map((a) => a.address);
  expect(addrs.some((a) => a.startsWith("127.") || a === "::1")).toBe(true);
});

for (const name of [hostName, "localhost", "worky.localhost"]) {
  attempt(`fetch a DNS name that resolves to loopback (${name})`, async () => {
    const { body } = await tryFetch(`http://${name}:${target.port}/`);
    expect(body.ok).toBe(false);
    expect(body.code).toBe("ERR_PERMISSION_DENIED");
    expect(String(body.message)).toMatch(/loopback/);
    expect(target.hits).toBe(0);
  });
}

for (
  const [label, to] of [
    ["a loopback IP", () => `http://127.0.0.1:${target.port}/`],
    ["a name for loopback", () => `http://${hostName}:${target.port}/`],
    ["the metadata address", () => `http://169.254.169.254/latest/meta-data/`],
    ["a private IP", () => `http://10.0.0.1/`],
  ] as const
) {
  for (const status of [302, 307]) {
    attempt(`follow a ${status} redirect to ${label}`, async () => {
      redirector.hits = 0;
      const { body } = await tryFetch(
        `${redirector.url}/?s=${status}&to=${encodeURIComponent(to())}`,
      );
      expect(redirector.hits).toBe(1); // the first hop was allowed and made
      expect(body.ok).toBe(false);
      expect(body.code).toBe("ERR_PERMISSION_DENIED");
      expect(target.hits).toBe(0);
    });
  }
}

it("control: a redirect between allowed addresses is followed, 307 keeps the POST body", async () => {
  const echo = await startTarget((req) => new Response(req.body));
  try {
    const hop = `http://127.0.0.1:${redirector.port}/?s=307&to=${encodeURIComponent(echo.url)}`;
    const { body } = await ask(
      f,
      "allowed",
      `/?m=POST&body=hello&to=${encodeURIComponent(hop)}`,
    );
    expect(body).toEqual({ ok: true, value: { status: 200, text: "hello" } });
  } finally {
    await echo.close();
  }
});
