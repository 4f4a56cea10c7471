/**
 * WebSockets accepted by Durable Objects: relayed to the worker holding the
 * object (not the one that took the request), handler methods, tags, closes
 * both ways, errors.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../../_helpers/fixture.ts";
import { connect } from "./_client.ts";

const TENANT = `
import { DurableObject } from "cloudflare:workers";
globalThis.workerId ??= crypto.randomUUID();

export class Room extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.searchParams.has("throw")) throw new Error("room refused the socket");
    const [client, server] = Object.values(new WebSocketPair());
    const tag = url.searchParams.get("tag") ?? "none";
    this.ctx.acceptWebSocket(server, [tag, "all"]);
    server.send(JSON.stringify({ front: url.searchParams.get("front"), object: globalThis.workerId }));
    return new Response(null, { status: 101, webSocket: client });
  }
  async webSocketMessage(ws, message) {
    const [cmd, arg] = String(message).split(" ");
    if (cmd === "count") {
      const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
      await this.ctx.storage.put("n", n);
      ws.send("n=" + n);
    } else if (cmd === "tagged") {
      for (const s of this.ctx.getWebSockets(arg)) s.send("to " + arg + " from " + this.ctx.getTags(ws)[0]);
    } else if (cmd === "kick") {
      for (const s of this.ctx.getWebSockets(arg)) s.close(4001, "kicked");
    } else if (cmd === "throw") {
      throw new Error("handler failed");
    } else if (cmd === "crash") {
      setTimeout(() => Deno.exit(1)); // ends the object's worker
    } else ws.send("?" + message);
  }
  async webSocketClose(ws, code, reason, wasClean) {
    await this.ctx.storage.put("lastClose", [code, reason, wasClean]);
    for (const s of this.ctx.getWebSockets()) s.send("closed " + code + " " + reason);
  }
  lastClose() { return this.ctx.storage.get("lastClose"); }
  open() { return this.ctx.getWebSockets().length; }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const room = env.ROOMS.getByName(url.pathname.slice(1) || "main");
    if (url.searchParams.has("info")) {
      return Response.json({ lastClose: await room.lastClose(), open: await room.open() });
    }
    url.searchParams.set("front", globalThis.workerId);
    return room.fetch(new Request(url, request));
  },
};
`;

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture({
    "mod.js": TENANT,
    "worky.toml": `
[server]
data_dir = ".worky"
[tenants.rooms]
module = "mod.js"
routes = ["*/*"]
durable_objects = { ROOMS = "Room" }
[tenants.rooms.limits]
# one event per worker before a second starts: the object lands on the worker not taking the request
max_concurrency_per_worker = 1
max_workers = 2
`,
  });
});
afterAll(async () => {
  await fx?.close();
  await Deno.remove(fx.dir, { recursive: true }).catch(() => {});
});

const info = async (room: string) => (await fx.fetch(`/${room}?info`)).json();
const logged = (text: string) => fx.logger.entries.some((e) => String(e.msg).includes(text));

it("relays frames to the worker holding the object, through its handler methods", async () => {
  const a = connect(`${fx.url}/r1?tag=red`);
  await a.opened;
  const hello = JSON.parse(String(await a.next()));
  // the request was taken by one worker, the object lives in the other: frames cross to it
  expect(hello.front).not.toBe(hello.object);
  a.send("count");
  expect(await a.next()).toBe("n=1");
  a.send("count");
  expect(await a.next()).toBe("n=2");

  const b = connect(`${fx.url}/r1?tag=blue`);
  await b.opened;
  expect(JSON.parse(String(await b.next())).object).toBe(hello.object);
  a.send("tagged blue");
  expect(await b.next()).toBe("to blue from red");
  b.send("tagged all");
  expect(await a.next()).toBe("to all from blue");
  expect(await b.next()).toBe("to all from blue");

  // a throwing handler is logged; the socket and the object stay
  a.send("throw");
  a.send("count");
  expect(await a.next()).toBe("n=3");
  await until(() => logged("Room.webSocketMessage() threw"));

  // client closes → webSocketClose(ws, code, reason, wasClean) → the others hear it
  b.close(3000, "going");
  expect((await b.closed).code).toBe(3000);
  expect(await a.next()).toBe("closed 3000 going");
  expect(await info("r1")).toEqual({ lastClose: [3000, "going", true], open: 1 });

  // the object closes a socket → the client gets its code and reason
  a.send("kick red");
  expect(await a.closed).toMatchObject({ code: 4001, reason: "kicked" });
  await until(async () => (await info("r1")).open === 0);
});

it("an object throwing during the upgrade is a clear error, not a hang", async () => {
  const c = connect(`${fx.url}/r2?throw`);
  await expect(c.opened).rejects.toThrow();
  expect((await c.closed).wasClean).toBe(false);
  const res = await fx.fetch("/r2?throw", { headers: { upgrade: "websocket" } });
  expect(res.status).toBe(500);
  expect((await res.json()).error.message).toContain("room refused the socket");
});

it("the object's worker dying closes its sockets with 1011", async () => {
  const a = connect(`${fx.url}/r3`);
  const b = connect(`${fx.url}/r3`);
  await Promise.all([a.opened, b.opened]);
  await Promise.all([a.next(), b.next()]);
  a.send("crash");
  const [ca, cb] = await Promise.all([a.closed, b.closed]);
  expect([ca.code, cb.code]).toEqual([1011, 1011]);
  // the object comes back on the next connection (its storage intact)
  const c = connect(`${fx.url}/r3`);
  await c.opened;
  await c.next();
  c.send("count");
  expect(await c.next()).toBe("n=1");
  c.close();
  await c.closed;
});
