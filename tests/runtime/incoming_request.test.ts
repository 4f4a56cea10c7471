/**
 * The Request a tenant receives is built lazily (runtime/incoming_request.worker.ts): these
 * tests drive it through a real server and real workers, and check that every way a tenant
 * uses a request still works: reading it, its body, cloning, deriving, forwarding with fetch.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Fixture, startFixture } from "../_helpers/fixture.ts";

let upstream: Deno.HttpServer<Deno.NetAddr>;
let app: Fixture;

const TENANT = `
export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/shape") {
      let setError = null;
      try { request.headers.set("x-new", "1"); } catch (e) { setError = e.message; }
      return Response.json({
        isRequest: request instanceof Request,
        tag: Object.prototype.toString.call(request),
        ctor: request.constructor === Request,
        method: request.method,
        accept: request.headers.get("accept"),
        cookies: request.headers.get("cookie"),
        setError,
        signal: request.signal instanceof AbortSignal,
        redirect: request.redirect,
        inspected: Deno.inspect(request).includes("Request"),
      });
    }
    if (path === "/body") {
      const copy = request.clone();
      const [a, b] = [await copy.text(), await request.json()];
      return Response.json({ a, b, used: request.bodyUsed });
    }
    if (path === "/derive") {
      const derived = new Request(request, { headers: { "x-derived": "yes" } });
      return Response.json({
        method: derived.method,
        header: derived.headers.get("x-derived"),
        body: await derived.text(),
        originalUsed: request.bodyUsed,
      });
    }
    if (path === "/forward") {
      const res = await fetch(new Request(UPSTREAM + "/echo", request));
      return new Response(await res.text(), { status: res.status });
    }
    if (path === "/forward-direct") {
      // a proxy that hands the incoming request itself to fetch()
      return fetch(UPSTREAM + "/echo", { method: request.method, headers: request.headers, body: request.body });
    }
    if (path === "/stream") {
      let n = 0;
      for await (const chunk of request.body) n += chunk.byteLength;
      return new Response(String(n));
    }
    return new Response("no such test", { status: 404 });
  },
};
`;

beforeAll(async () => {
  upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    return new Response(`${req.method} ${req.headers.get("x-test")} ${await req.text()}`);
  });
  const port = upstream.addr.port;
  app = await startFixture({
    "t.ts": `const UPSTREAM = "http://127.0.0.1:${port}";\n${TENANT}`,
    "worky.toml": `[tenants.t]\nmodule = "t.ts"\nroutes = ["*/*"]\n` +
      `[tenants.t.permissions]\nnet = ["127.0.0.1:${port}"]\n`,
  });
});

afterAll(async () => {
  await app?.close();
  await upstream?.shutdown();
});

it("is a Request with the client's method, URL and headers; its headers are read-only", async () => {
  const res = await app.fetch("/shape", {
    method: "PATCH",
    headers: { accept: "text/x-test", cookie: "a=1" },
  });
  expect(await res.json()).toEqual({
    isRequest: true,
    tag: "[object Request]",
    ctor: true,
    method: "PATCH",
    accept: "text/x-test",
    cookies: "a=1",
    setError: expect.stringContaining("Can't modify immutable headers"),
    signal: true,
    redirect: "follow",
    inspected: true,
  });
});

it("clones and reads its body", async () => {
  const res = await app.fetch("/body", { method: "POST", body: '{"n":42}' });
  expect(await res.json()).toEqual({ a: '{"n":42}', b: { n: 42 }, used: true });
});

it("derives a new Request from it, taking its body", async () => {
  const res = await app.fetch("/derive", { method: "PUT", body: "payload" });
  expect(await res.json()).toEqual({
    method: "PUT",
    header: "yes",
    body: "payload",
    originalUsed: true,
  });
});

it("forwards it with fetch(), as a Request and by its parts", async () => {
  const init = { method: "POST", headers: { "x-test": "fwd" }, body: "hello upstream" };
  const a = await app.fetch("/forward", init);
  expect(await a.text()).toBe("POST fwd hello upstream");
  const b = await app.fetch("/forward-direct", init);
  expect(await b.text()).toBe("POST fwd hello upstream");
});

it("streams a large request body to the tenant", async () => {
  const size = 3 * 1024 * 1024;
  const res = await app.fetch("/stream", { method: "POST", body: new Uint8Array(size) });
  expect(await res.text()).toBe(String(size));
});
