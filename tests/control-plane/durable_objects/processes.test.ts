/**
 * Durable Objects across real Worky processes: a `kill -9` mid-load loses no
 * resolved write, and two processes sharing one database never both run the
 * same object (the lease), with a clear error for the one that doesn't.
 */
import { afterEach, expect, it } from "vitest";
import { deserialize } from "node:v8";
import { createClient } from "@libsql/client";
import { until, writeTree } from "../../_helpers/fixture.ts";
import { TENANT, toml } from "../../runtime/durable_objects/_tenant.ts";
import { idFromName, idNamespace } from "../../../runtime/bindings/durable_object/id.worker.ts";
import { startWorkyChild, type WorkyProcess } from "../../_helpers/worky_process.ts";

const children: WorkyProcess[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
});

async function setup(): Promise<string> {
  const dir = await writeTree({ "mod.js": TENANT, "worky.toml": toml() });
  return `${dir}/worky.toml`;
}

async function start(config: string, leaseMs: number): Promise<WorkyProcess> {
  const child = await startWorkyChild(config, { durableObjects: { leaseMs, tickMs: 200 } });
  children.push(child);
  return child;
}

it("loses no resolved increment when the process is killed with SIGKILL", async () => {
  const config = await setup();
  const child = await start(config, 30_000);
  const acknowledged: number[] = [];
  let stop = false;
  const client = async () => {
    while (!stop) {
      try {
        const res = await fetch(`${child.url}/inc/durable`);
        if (res.status !== 200) {
          await res.body?.cancel();
          continue;
        }
        acknowledged.push(await res.json());
      } catch {
        return; // the server is gone
      }
    }
  };
  const clients = Array.from({ length: 16 }, client);
  await until(() => acknowledged.length >= 300, 60_000);
  await child.stop("SIGKILL");
  stop = true;
  await Promise.all(clients);

  const dir = config.slice(0, config.lastIndexOf("/"));
  const id = idFromName(idNamespace("t", "Counter"), "durable").toString();
  const db = createClient({ url: `file:${dir}/.worky/do/t/Counter/${id}.db` });
  try {
    const rs = await db.execute("SELECT value FROM _cf_KV WHERE key = 'n'");
    const stored = deserialize(new Uint8Array(rs.rows[0][0] as ArrayBuffer)) as number;
    const highest = Math.max(...acknowledged);
    expect(stored).toBeGreaterThanOrEqual(highest);
    // exact: every acknowledged value is distinct
    expect(new Set(acknowledged).size).toBe(acknowledged.length);
  } finally {
    db.close();
  }
}, 90_000);

it(
  "runs an object in one process only; the other gets a clear error until the lease ends",
  async () => {
    const config = await setup();
    const a = await start(config, 1_500);
    const b = await start(config, 1_500);
    expect(await (await fetch(`${a.url}/inc/shared`)).json()).toBe(1);
    const refused = await fetch(`${b.url}/inc/shared`);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toMatch(
      /Durable Object Counter [0-9a-f]{64} \(tenant "t"\) is live in another Worky process/,
    );
    // other objects are free to live in b
    expect(await (await fetch(`${b.url}/inc/other`)).json()).toBe(1);
    // a renews its lease: still refused on b, still served by a
    expect(await (await fetch(`${a.url}/inc/shared`)).json()).toBe(2);

    // a dies: once its lease runs out, b takes the object over with its state
    await a.stop("SIGKILL");
    let taken: unknown;
    await until(async () => {
      const res = await fetch(`${b.url}/inc/shared`);
      if (res.status !== 200) {
        await res.body?.cancel();
        return false;
      }
      taken = await res.json();
      return true;
    }, 20_000);
    expect(taken).toBe(3);
  },
  60_000,
);

it(
  "fires an alarm once, in the process holding its object, with two processes on one database",
  async () => {
    const config = await setup();
    const a = await start(config, 30_000);
    const b = await start(config, 30_000);
    const store = async (base: string, method: string, ...args: unknown[]) => {
      const q = encodeURIComponent(JSON.stringify(args));
      const res = await fetch(`${base}/store/ring?m=${method}&args=${q}`);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${method}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    // the object lives in a; both processes' timer services see its do-alarm timer
    const due = Date.now() + 1_500;
    expect(await store(a.url, "setAlarm", due)).toBe(due);
    await until(async () => (await store(a.url, "get", "alarms"))?.length === 1, 20_000);
    // the timer row is removed after alarm() returned: no second firing can be pending
    await until(async () => (await store(a.url, "getAlarm")) === null, 20_000);
    expect(await store(a.url, "get", "alarms")).toEqual([{ retryCount: 0, isRetry: false }]);
    // b never took the object over
    const refused = await fetch(
      `${b.url}/store/ring?m=get&args=${encodeURIComponent('["alarms"]')}`,
    );
    expect(refused.status).toBe(500);
    expect(await refused.text()).toMatch(/is live in another Worky process/);
  },
  60_000,
);
