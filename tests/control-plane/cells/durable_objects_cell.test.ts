/**
 * Durable Objects of a tenant in a cell: its objects live in the cell (leases in the shared
 * database, files under the data dir), survive the cell's death with their storage, get their
 * alarms from the control plane's timer service, and a tenant moved into a cell by
 * `isolation = "auto"` takes its objects along. Real server, real cell processes, real libSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, REPO, startFixture, until } from "../../_helpers/fixture.ts";
import { Deployment } from "../../../runtime/deployment.ts";
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";
import { connect } from "../../runtime/websocket/_client.ts";

const TENANT = `
import { DurableObject } from "worky";
export class Counter extends DurableObject {
  async increment() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return { n, pid: Deno.pid };
  }
  async arm() { await this.ctx.storage.setAlarm(Date.now()); return true; }
  async alarm() { await this.ctx.storage.put("rang", ((await this.ctx.storage.get("rang")) ?? 0) + 1); }
  async rang() { return (await this.ctx.storage.get("rang")) ?? 0; }
}
export default {
  async fetch(req, env) {
    const path = new URL(req.url).pathname;
    if (path.endsWith("/exit")) Deno.exit(1);
    const stub = env.COUNTER.get(env.COUNTER.idFromName("one"));
    if (path.endsWith("/inc")) return Response.json(await stub.increment());
    if (path.endsWith("/arm")) return Response.json(await stub.arm());
    if (path.endsWith("/rang")) return Response.json(await stub.rang());
    return new Response("ok");
  },
};`;

const block = (name: string, isolation: string) =>
  `[tenants.${name}]\nmodule = "t.js"\nroutes = ["*/${name}/*"]\n` +
  `durable_objects = { COUNTER = "Counter" }\n[tenants.${name}.limits]\nisolation = "${isolation}"\n`;

describe("Durable Objects in a cell", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      "t.js": TENANT,
      "worky.toml": block("celled", "cell") + block("moving", "auto"),
    }, { durableObjects: { tickMs: 0 } });
  });
  afterAll(() => fx?.close());

  const inc = async (name: string) => {
    const res = await fx.fetch(`/${name}/inc`);
    expect(res.status).toBe(200);
    return await res.json() as { n: number; pid: number };
  };
  const cellPid = (name: string) => {
    const d = fx.server.deployments.get(name)!.current;
    return d instanceof Deployment ? undefined : d.stats().pid;
  };

  it('runs the objects of an isolation = "cell" tenant in its cell', async () => {
    expect(cellPid("celled")).toBeGreaterThan(0);
    expect(await inc("celled")).toEqual({ n: 1, pid: cellPid("celled") });
    expect((await inc("celled")).n).toBe(2);
    expect(fx.server.durableObjects.directory.live).toBe(0); // none in the control plane
  }, 30_000);

  it("keeps their storage when the cell dies, and takes them back at once", async () => {
    const before = cellPid("celled")!;
    Deno.kill(before, "SIGKILL"); // its leases are still held, by the cell's own owner
    await until(() => (cellPid("celled") ?? before) !== before, 10_000);
    const started = performance.now();
    const after = await inc("celled");
    expect(after).toEqual({ n: 3, pid: cellPid("celled") });
    expect(performance.now() - started).toBeLessThan(5_000); // not the 30 s lease
  }, 30_000);

  it("fires their alarms from the control plane's timer service", async () => {
    expect(await (await fx.fetch("/celled/arm")).json()).toBe(true);
    await until(async () => {
      await fx.server.durableObjects.alarms.runDue();
      return await (await fx.fetch("/celled/rang")).json() === 1;
    }, 10_000);
  }, 30_000);

  it('moves them along when an isolation = "auto" tenant moves into a cell', async () => {
    expect(await inc("moving")).toEqual({ n: 1, pid: Deno.pid }); // in-process: this pid
    expect(fx.server.durableObjects.directory.live).toBe(1);
    for (let i = 0; i < 2; i++) await (await fx.fetch("/moving/exit")).body?.cancel();
    await until(() => cellPid("moving") !== undefined, 20_000);
    // the control plane let go of the object; the cell placed it with its storage
    const moved = await inc("moving");
    expect(moved).toEqual({ n: 2, pid: cellPid("moving") });
    expect(fx.server.durableObjects.directory.live).toBe(0);
  }, 30_000);

  it("brings them back in-process with its next deploy", async () => {
    await fx.server.deployments.redeploy("moving");
    expect(cellPid("moving")).toBeUndefined();
    // the cell it left releases its objects as it drains; the next call places them here
    expect(await inc("moving")).toEqual({ n: 3, pid: Deno.pid });
    expect(fx.server.durableObjects.directory.live).toBe(1);
  }, 30_000);
});

it("relays WebSockets an object in a cell holds (examples/chat_room)", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "worky-chat-cell-" });
  const config = await loadConfig(`${REPO}worky.toml`, { env: {} });
  config.server.dataDir = dataDir;
  config.server.dbUrl = `file:${dataDir}/worky.db`;
  config.tenants = config.tenants.filter((t) => t.name === "chat");
  config.tenants[0].limits.isolation = "cell";
  const server = await startServer({
    config,
    port: 0,
    hostname: "127.0.0.1",
    logger: new MemoryLogger(),
  });
  try {
    expect(server.deployments.get("chat")!.current).not.toBeInstanceOf(Deployment);
    const ada = connect(`${server.url}/chat/lobby?name=ada`);
    await ada.opened;
    expect(await ada.nextJson()).toEqual({ type: "history", messages: [] });
    expect(await ada.nextJson()).toEqual({ type: "join", name: "ada", count: 1 });
    const bob = connect(`${server.url}/chat/lobby?name=bob`);
    await bob.opened;
    expect(((await bob.nextJson()) as { type: string }).type).toBe("history");
    expect(await ada.nextJson()).toEqual({ type: "join", name: "bob", count: 2 });
    bob.send("hello from bob");
    expect(await ada.nextOfType("message")).toMatchObject({ name: "bob", text: "hello from bob" });
    ada.close();
    bob.close();
  } finally {
    await server.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}, 30_000);
