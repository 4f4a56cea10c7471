/**
 * The limits at the ingress, through a real server: 431 for oversized
 * headers, 413 for a declared oversized body, 429 with retry-after (per
 * tenant and per client IP, on an injected clock), 503 when the tenant's
 * concurrent requests are exhausted, and the per-event subrequest limit.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../../_helpers/fixture.ts";
import { ManualClock } from "../../../runtime/clock.ts";

let f: Fixture;
const clock = new ManualClock(1_000_000);
let release: () => void = () => {};
let blocker: Deno.HttpServer;
let blockerPort = 0;
let blocked = 0;

beforeAll(async () => {
  const listening = Promise.withResolvers<number>();
  let gate = Promise.withResolvers<void>();
  release = () => {
    gate.resolve();
    gate = Promise.withResolvers<void>();
  };
  blocker = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => listening.resolve(port) },
    async () => {
      blocked++;
      await gate.promise;
      return new Response("released");
    },
  );
  blockerPort = await listening.promise;
  f = await startFixture({
    "echo.ts":
      `export default { async fetch(req) { return new Response(String((await req.text()).length)); } };`,
    "slow.ts": `export default { async fetch() {
      return new Response(await (await fetch("http://127.0.0.1:${blockerPort}/")).text());
    } };`,
    "fanout.ts": `export default { async fetch(req) {
      const n = Number(new URL(req.url).searchParams.get("n"));
      try {
        for (let i = 0; i < n; i++) await (await fetch("data:,x")).text();
        return new Response("done " + n);
      } catch (e) { return new Response(e.message, { status: 599 }); }
    } };`,
    "worky.toml": `
[tenants.echo]
module = "echo.ts"
routes = ["127.0.0.1/echo/*"]
[tenants.echo.limits]
max_body_bytes = 1000
max_header_bytes = 2048

[tenants.rate]
module = "echo.ts"
routes = ["127.0.0.1/rate/*"]
[tenants.rate.limits]
requests_per_second = 2

[tenants.perip]
module = "echo.ts"
routes = ["127.0.0.1/perip/*"]
[tenants.perip.limits]
requests_per_second_per_ip = 1

[tenants.slow]
module = "slow.ts"
routes = ["127.0.0.1/slow/*"]
[tenants.slow.permissions]
net = ["127.0.0.1:${blockerPort}"]
[tenants.slow.limits]
max_concurrent_requests = 2
queue_ms = 0

[tenants.fanout]
module = "fanout.ts"
routes = ["127.0.0.1/fanout/*"]
[tenants.fanout.limits]
subrequests = 5
`,
  }, { clock });
});
afterAll(async () => {
  release();
  await f?.close();
  await blocker?.shutdown();
});

async function errorOf(res: Response) {
  const body = await res.json();
  return body.error as { code: string; message: string };
}

it("431 for headers over max_header_bytes", async () => {
  const ok = await f.fetch("/echo/", { headers: { "x-a": "a".repeat(1000) } });
  expect(ok.status).toBe(200);
  await ok.body?.cancel();
  const res = await f.fetch("/echo/", { headers: { "x-a": "a".repeat(3000) } });
  expect(res.status).toBe(431);
  expect((await errorOf(res)).message).toMatch(/max_header_bytes/);
});

it("413 for a declared body over max_body_bytes; a streamed one errors past it", async () => {
  const ok = await f.fetch("/echo/", { method: "POST", body: "x".repeat(1000) });
  expect(await ok.text()).toBe("1000");
  const res = await f.fetch("/echo/", { method: "POST", body: "x".repeat(1001) });
  expect(res.status).toBe(413);
  expect((await errorOf(res)).code).toBe("ERR_PAYLOAD_TOO_LARGE");
  const chunks = new ReadableStream({
    start(c) {
      for (let i = 0; i < 3; i++) c.enqueue(new TextEncoder().encode("y".repeat(600)));
      c.close();
    },
  });
  const streamed = await f.fetch("/echo/", {
    method: "POST",
    body: chunks,
    // @ts-ignore: duplex
    duplex: "half",
  });
  expect(streamed.status).toBeGreaterThanOrEqual(400);
  expect(await streamed.text()).toMatch(/max_body_bytes/);
});

it("429 with retry-after over requests_per_second, admitted again when the clock moves", async () => {
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 3; i++) {
    const res = await f.fetch("/rate/");
    statuses.push(res.status);
    if (res.status === 429) retryAfter = res.headers.get("retry-after");
    await res.body?.cancel();
  }
  expect(statuses).toEqual([200, 200, 429]);
  expect(retryAfter).toBe("1");
  clock.advance(500);
  const again = await f.fetch("/rate/");
  expect(again.status).toBe(200);
  await again.body?.cancel();
});

it("429 per client IP", async () => {
  const a = await f.fetch("/perip/");
  const b = await f.fetch("/perip/");
  expect([a.status, b.status]).toEqual([200, 429]);
  expect((await errorOf(b)).message).toMatch(/from this client/);
  await a.body?.cancel();
  clock.advance(1000);
  const c = await f.fetch("/perip/");
  expect(c.status).toBe(200);
  await c.body?.cancel();
});

it("503 when max_concurrent_requests are in flight; served again once they finish", async () => {
  blocked = 0;
  const first = [f.fetch("/slow/"), f.fetch("/slow/")];
  await until(() => blocked === 2);
  const third = await f.fetch("/slow/");
  expect(third.status).toBe(503);
  expect((await errorOf(third)).code).toBe("ERR_TENANT_OVERLOADED");
  release();
  for (const r of await Promise.all(first)) expect(await r.text()).toBe("released");
  const after = f.fetch("/slow/");
  await until(() => blocked === 3);
  release();
  expect(await (await after).text()).toBe("released");
});

it("the subrequest limit per event holds, and each event gets its own budget", async () => {
  expect(await (await f.fetch("/fanout/?n=5")).text()).toBe("done 5");
  const over = await f.fetch("/fanout/?n=6");
  expect(over.status).toBe(599);
  expect(await over.text()).toMatch(/subrequest limit exceeded: at most 5 per event/);
  expect(await (await f.fetch("/fanout/?n=5")).text()).toBe("done 5");
});
