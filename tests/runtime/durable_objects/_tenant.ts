/** A tenant module exercising Durable Objects, and a fixture serving it. */
import { type Fixture, startFixture } from "../../_helpers/fixture.ts";
import type { Clock } from "../../../runtime/clock.ts";
import type { DurableObjectsOptions } from "../../../control-plane/durable_objects/service.ts";

export const TENANT = `
import { DurableObject } from "worky";
import { DurableObject as CfDurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    globalThis.constructed = (globalThis.constructed ?? 0) + 1;
  }
  async increment(by = 1) {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + by;
    await this.ctx.storage.put("n", n);
    return n;
  }
  async value() { return (await this.ctx.storage.get("n")) ?? 0; }
  constructions() { return globalThis.constructed; }
  sameBase() { return DurableObject === CfDurableObject; }
  idInfo() { return { id: this.ctx.id.toString(), name: this.ctx.id.name }; }
  echo(value) { return value; }
  boom(message) { throw new RangeError(message); }
  async fetch(request) {
    const url = new URL(request.url);
    return new Response(request.method + " " + url.pathname + " " + (await request.text()), {
      status: 201, headers: { "x-object": "counter" },
    });
  }
}

export class Store extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.ready = (await ctx.storage.get("boot")) ?? 0;
      await ctx.storage.put("boot", this.ready + 1);
    });
  }
  boots() { return this.ready + 1; }
  put(k, v) { return this.ctx.storage.put(k, v); }
  putMany(entries) { return this.ctx.storage.put(entries); }
  get(k) { return this.ctx.storage.get(k); }
  getMany(keys) { return this.ctx.storage.get(keys).then((m) => [...m]); }
  del(k) { return this.ctx.storage.delete(k); }
  delMany(keys) { return this.ctx.storage.delete(keys); }
  list(opts) { return this.ctx.storage.list(opts).then((m) => [...m]); }
  deleteAll() { return this.ctx.storage.deleteAll(); }
  async txnFail() {
    await this.ctx.storage.put("t", "before");
    try {
      await this.ctx.storage.transaction(async (txn) => {
        await txn.put("t", "inside");
        await txn.put("u", "inside");
        if ((await txn.get("t")) !== "inside") throw new Error("txn does not read its writes");
        throw new Error("abort");
      });
    } catch (e) { if (e.message !== "abort") throw e; }
    return [await this.ctx.storage.get("t"), await this.ctx.storage.get("u")];
  }
  async txnOk() {
    return await this.ctx.storage.transaction(async (txn) => {
      await txn.put({ a1: 1, a2: 2 });
      await txn.delete("a1");
      return [...(await txn.list({ prefix: "a" }))];
    });
  }
  async txnRollback() {
    await this.ctx.storage.transaction(async (txn) => { await txn.put("r", 1); txn.rollback(); });
    return (await this.ctx.storage.get("r")) ?? null;
  }
  sql() {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT, data BLOB)");
    const ins = sql.exec("INSERT INTO people (name, data) VALUES (?, ?), (?, ?)", "ada", new Uint8Array([1, 2]).buffer, "bob", null);
    const all = sql.exec("SELECT id, name FROM people ORDER BY id").toArray();
    const one = sql.exec("SELECT count(*) AS n FROM people").one();
    const raw = [...sql.exec("SELECT name FROM people ORDER BY id").raw()];
    const iter = [];
    for (const row of sql.exec("SELECT name FROM people WHERE name = ?", "bob")) iter.push(row.name);
    const blob = sql.exec("SELECT data FROM people WHERE name = 'ada'").one().data;
    let error = null;
    try { sql.exec("SELEC nonsense"); } catch (e) { error = e.message; }
    let reserved = null;
    try { sql.exec("SELECT * FROM _cf_KV"); } catch (e) { reserved = e.message; }
    let notOne = null;
    try { sql.exec("SELECT * FROM people").one(); } catch (e) { notOne = e.message; }
    return { written: ins.rowsWritten, all, one, raw, iter, blob: [...new Uint8Array(blob)], error, reserved, notOne };
  }
  getAlarm() { return this.ctx.storage.getAlarm(); }
  async deleteAlarm() { await this.ctx.storage.deleteAlarm(); return await this.ctx.storage.getAlarm(); }
  async setAlarm(t) { await this.ctx.storage.setAlarm(t); return await this.ctx.storage.getAlarm(); }
  async alarm(info) {
    const log = (await this.ctx.storage.get("alarms")) ?? [];
    log.push(info);
    await this.ctx.storage.put("alarms", log);
    const rearm = await this.ctx.storage.get("rearm");
    if (rearm !== undefined) {
      const before = await this.ctx.storage.getAlarm();
      await this.ctx.storage.setAlarm(rearm);
      await this.ctx.storage.put("seen", [before, await this.ctx.storage.getAlarm()]);
      await this.ctx.storage.delete("rearm");
    }
    const failures = (await this.ctx.storage.get("fail")) ?? 0;
    if (log.length <= failures) throw new Error("alarm failed on purpose");
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, op, name = "a"] = url.pathname.split("/");
    const args = url.searchParams.has("args") ? JSON.parse(url.searchParams.get("args")) : [];
    try {
      if (op === "inc") return Response.json(await env.COUNTER.getByName(name).increment());
      if (op === "counter") {
        const stub = env.COUNTER.getByName(name);
        return Response.json((await stub[url.searchParams.get("m")](...args)) ?? null);
      }
      if (op === "store") {
        const stub = env.STORE.get(env.STORE.idFromName(name));
        return Response.json((await stub[url.searchParams.get("m")](...args)) ?? null);
      }
      if (op === "fetch") {
        const res = await env.COUNTER.getByName(name).fetch("http://do/path/x", { method: "POST", body: "hi" });
        return new Response(res.status + " " + res.headers.get("x-object") + " " + await res.text());
      }
      if (op === "ids") {
        const a = env.COUNTER.idFromName("x");
        const b = env.COUNTER.idFromName("x");
        const u = env.COUNTER.newUniqueId();
        const parsed = env.COUNTER.idFromString(u.toString());
        const errors = [];
        for (const bad of ["nope", "g".repeat(64), env.STORE.idFromName("x").toString()]) {
          try { env.COUNTER.idFromString(bad); errors.push(null); } catch (e) { errors.push(e.name + ": " + e.message); }
        }
        return Response.json({
          a: a.toString(), same: a.equals(b), name: a.name, unique: u.toString(),
          parsedEquals: parsed.equals(u), differs: !a.equals(u), errors,
          info: await env.COUNTER.get(a).idInfo(),
        });
      }
      if (op === "uncloneable") {
        try { await env.COUNTER.getByName(name).echo(() => 1); return new Response("no error"); }
        catch (e) { return new Response(e.name + ": " + e.message, { status: 400 }); }
      }
      if (op === "boom") {
        try { await env.COUNTER.getByName(name).boom("kaput"); return new Response("no error"); }
        catch (e) { return new Response((e instanceof Error) + " " + e.name + ": " + e.message, { status: 500 }); }
      }
      if (op === "nomethod") {
        try { await env.COUNTER.getByName(name).nope(); return new Response("no error"); }
        catch (e) { return new Response(e.message, { status: 500 }); }
      }
      return new Response("unknown op", { status: 404 });
    } catch (e) {
      return new Response("error: " + e.message, { status: 500 });
    }
  },
};
`;

export function toml(extra = ""): string {
  return `
[tenants.t]
module = "mod.js"
routes = ["*/*"]
durable_objects = { COUNTER = "Counter", STORE = "Store" }
${extra}
[tenants.t.limits]
max_workers = 4
max_concurrency_per_worker = 8
`;
}

/**
 * A real server on 127.0.0.1:0 serving {@link TENANT}; the eviction tick is
 * off unless asked for (tests call `evictIdle()`). Alarms are timers of the
 * server's started timer service, on the given clock: tests move a
 * ManualClock and call `server.durableObjects.alarms.runDue()`.
 */
export async function startDoFixture(
  options: { clock?: Clock; durableObjects?: DurableObjectsOptions; dbUrl?: string } = {},
): Promise<Fixture> {
  return await startFixture({ "mod.js": TENANT, "worky.toml": toml() }, {
    env: options.dbUrl ? { WORKY_DB_URL: options.dbUrl } : {},
    clock: options.clock,
    durableObjects: { tickMs: 0, ...options.durableObjects },
  });
}

/** Calls a method of the Store object `name` through HTTP. */
export async function storeCall(
  fx: Fixture,
  name: string,
  method: string,
  ...args: unknown[]
): Promise<unknown> {
  const q = encodeURIComponent(JSON.stringify(args));
  const res = await fx.fetch(`/store/${name}?m=${method}&args=${q}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method}: ${res.status} ${text}`);
  return JSON.parse(text);
}
