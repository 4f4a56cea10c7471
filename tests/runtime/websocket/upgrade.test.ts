/**
 * A tenant accepting a WebSocket in `fetch` (WebSocketPair, status 101),
 * served by a real server, spoken to by a real WebSocket client.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../../_helpers/fixture.ts";
import { connect } from "./_client.ts";

const TENANT = `
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/echo") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.send("welcome"); // before the answer: delivered first
      server.addEventListener("message", (e) => {
        if (e.data === "bye") server.close(4000, "bye bye");
        else if (e.data === "crash") setTimeout(() => Deno.exit(1)); // ends the worker
        else if (e.data === "listener-throws") throw new Error("listener failed");
        else if (e.data === "attachment") {
          server.serializeAttachment({ n: 1, list: ["a"] });
          const a = server.deserializeAttachment();
          server.send(JSON.stringify(a));
        }
        else server.send(typeof e.data === "string" ? "echo:" + e.data : e.data);
      });
      server.addEventListener("close", (e) => {
        console.log("server saw close " + e.code + " " + e.reason + " " + e.wasClean);
      });
      return new Response(null, { status: 101, webSocket: client, headers: { "x-tenant": "ws" } });
    }
    if (url.pathname === "/throws") throw new Error("upgrade refused by tenant");
    if (url.pathname === "/bare101") return new Response(null, { status: 101 });
    if (url.pathname === "/server-end") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      return new Response(null, { status: 101, webSocket: server });
    }
    return new Response("plain " + url.pathname);
  },
};
`;

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture({
    "mod.js": TENANT,
    "worky.toml": `
[tenants.ws]
module = "mod.js"
routes = ["*/*"]
[tenants.ws.limits]
max_workers = 1
isolation = "thread"   # in-process sockets; with "auto" its Deno.exit would move it into a cell
`,
  });
});
afterAll(async () => {
  await fx?.close();
  await Deno.remove(fx.dir, { recursive: true }).catch(() => {});
});

const logged = (text: string) => fx.logger.entries.some((e) => String(e.msg).includes(text));

it("echoes text and binary frames; what the tenant sent before answering comes first", async () => {
  const c = connect(`${fx.url}/echo`);
  await c.opened;
  expect(await c.next()).toBe("welcome");
  c.send("hello");
  expect(await c.next()).toBe("echo:hello");
  c.send(new Uint8Array([1, 2, 250]));
  const bin = await c.next();
  expect(bin).toBeInstanceOf(ArrayBuffer);
  expect([...new Uint8Array(bin as ArrayBuffer)]).toEqual([1, 2, 250]);
  c.send("attachment");
  expect(JSON.parse(String(await c.next()))).toEqual({ n: 1, list: ["a"] });
  // a throwing listener is logged; the socket and the worker stay
  c.send("listener-throws");
  c.send("still");
  expect(await c.next()).toBe("echo:still");
  await until(() => logged("listener failed"));
  c.close(1000, "done");
  const closed = await c.closed;
  expect(closed.code).toBe(1000);
  // the client's close reaches the tenant's server end
  await until(() => logged("server saw close 1000 done true"));
});

it("a close from the tenant reaches the client with its code and reason", async () => {
  const c = connect(`${fx.url}/echo`);
  await c.opened;
  expect(await c.next()).toBe("welcome");
  c.send("bye");
  const closed = await c.closed;
  expect(closed).toMatchObject({ code: 4000, reason: "bye bye" });
  await until(() => logged("server saw close 4000 bye bye"));
});

it("many sockets at once each get their own frames", async () => {
  const clients = Array.from({ length: 20 }, () => connect(`${fx.url}/echo`));
  await Promise.all(clients.map((c) => c.opened));
  await Promise.all(clients.map((c) => c.next()));
  clients.forEach((c, i) => c.send(`n${i}`));
  expect(await Promise.all(clients.map((c) => c.next()))).toEqual(
    clients.map((_, i) => `echo:n${i}`),
  );
  clients.forEach((c) => c.close());
  await Promise.all(clients.map((c) => c.closed));
});

it("the worker dying closes its client sockets with 1011; a new worker serves the next", async () => {
  const a = connect(`${fx.url}/echo`);
  const b = connect(`${fx.url}/echo`);
  await Promise.all([a.opened, b.opened]);
  a.send("crash");
  const [ca, cb] = await Promise.all([a.closed, b.closed]);
  expect(ca.code).toBe(1011);
  expect(cb.code).toBe(1011);
  expect(ca.reason).toContain("Deno.exit(1)");
  const c = connect(`${fx.url}/echo`);
  await c.opened;
  expect(await c.next()).toBe("welcome");
  c.close();
});

it("a tenant that throws during the upgrade fails the handshake with its error, no hang", async () => {
  const c = connect(`${fx.url}/throws`);
  await expect(c.opened).rejects.toThrow();
  const closed = await c.closed; // the handshake failed: closed without opening (Deno says 0)
  expect(c.errored()).toBe(true);
  expect(closed.wasClean).toBe(false);
  await until(() => logged("upgrade refused by tenant"));
  // the same request over plain HTTP shows the error body
  const res = await fx.fetch("/throws", {
    headers: { upgrade: "websocket", connection: "upgrade", "sec-websocket-version": "13" },
  });
  expect(res.status).toBe(500);
  expect((await res.json()).error.message).toContain("upgrade refused by tenant");
});

it("a WebSocket answer to a request that is not an upgrade is a clear 400", async () => {
  const res = await fx.fetch("/echo");
  expect(res.status).toBe(400);
  const body = await res.json();
  expect(body.error.code).toBe("ERR_BAD_REQUEST");
  expect(body.error.message).toContain("not a WebSocket upgrade");
  // the tenant's end heard the failure
  await until(() => logged("server saw close 1006"));
  expect(await (await fx.fetch("/other")).text()).toBe("plain /other");
});

it("status 101 without a webSocket, or with the accepted end, is a clear 500", async () => {
  const bare = await fx.fetch("/bare101");
  expect(bare.status).toBe(500);
  expect((await bare.json()).error.message).toContain("status 101 without a webSocket");
  const wrong = await fx.fetch("/server-end");
  expect(wrong.status).toBe(500);
  expect((await wrong.json()).error.message).toContain("must be the client end");
});
