/**
 * The timer service against a real libSQL file: due times, re-scheduling,
 * leases shared by two services (two "processes" on one database), lease
 * takeover, and on-time firing with the real clock.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../../control-plane/storage/database.ts";
import { TimerService } from "../../../control-plane/scheduler/timer_service.ts";
import { ManualClock } from "../../../runtime/clock.ts";
import { until } from "../../_helpers/fixture.ts";

let dir: string;
let db: Database;
let clock: ManualClock;

beforeEach(async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-timers-" });
  db = await openDatabase(`file:${dir}/worky.db`);
  clock = new ManualClock(1_000_000);
});
afterEach(async () => {
  db.close();
  await Deno.remove(dir, { recursive: true });
});

describe("TimerService", () => {
  it("fires a timer when due, with its payload, and deletes it", async () => {
    const timers = new TimerService({ client: db.client, clock });
    const fired: unknown[] = [];
    timers.on("test", (t) => void fired.push([t.key, t.dueAt, t.payload]));
    await timers.schedule("test", "a", 1_000_500, { n: 1 });
    expect(await timers.runDue()).toBe(0);
    clock.advance(499);
    expect(await timers.runDue()).toBe(0);
    clock.advance(1);
    expect(await timers.runDue()).toBe(1);
    expect(fired).toEqual([["a", 1_000_500, { n: 1 }]]);
    expect(await timers.get("test", "a")).toBeNull();
    expect(await timers.runDue()).toBe(0);
    await timers.close();
  });

  it("keeps a timer when the handler returns a next due time", async () => {
    const timers = new TimerService({ client: db.client, clock });
    let count = 0;
    timers.on("tick", (t) => {
      count++;
      return t.dueAt + 100;
    });
    await timers.schedule("tick", "k", clock.now());
    for (let i = 0; i < 3; i++) {
      await timers.runDue();
      clock.advance(100);
    }
    expect(count).toBe(3);
    expect((await timers.get("tick", "k"))?.dueAt).toBe(1_000_300);
    await timers.close();
  });

  it("ifEarlier only moves a timer earlier; cancel removes it", async () => {
    const timers = new TimerService({ client: db.client, clock });
    timers.on("q", () => {});
    await timers.schedule("q", "k", 2_000_000);
    await timers.schedule("q", "k", 3_000_000, null, { ifEarlier: true });
    expect((await timers.get("q", "k"))?.dueAt).toBe(2_000_000);
    await timers.schedule("q", "k", 1_500_000, null, { ifEarlier: true });
    expect((await timers.get("q", "k"))?.dueAt).toBe(1_500_000);
    await timers.schedule("q", "k", 9_000_000, null, { ifAbsent: true });
    expect((await timers.get("q", "k"))?.dueAt).toBe(1_500_000);
    expect(await timers.cancel("q", "k")).toBe(true);
    expect(await timers.list()).toEqual([]);
    await timers.close();
  });

  it("a re-schedule during the handler is not undone by its result", async () => {
    const timers = new TimerService({ client: db.client, clock });
    timers.on("q", async () => {
      await timers.schedule("q", "k", 1_000_050, null, { ifEarlier: true });
      return null; // "nothing more", but a new message arrived meanwhile
    });
    await timers.schedule("q", "k", clock.now());
    await timers.runDue();
    expect((await timers.get("q", "k"))?.dueAt).toBe(1_000_050);
    await timers.close();
  });

  it("two services on one database fire each timer exactly once", async () => {
    const a = new TimerService({ client: db.client, clock, owner: "a" });
    const db2 = await openDatabase(`file:${dir}/worky.db`);
    const b = new TimerService({ client: db2.client, clock, owner: "b" });
    const fired: string[] = [];
    a.on("t", (t) => void fired.push(`a:${t.key}`));
    b.on("t", (t) => void fired.push(`b:${t.key}`));
    for (let i = 0; i < 20; i++) await a.schedule("t", `k${i}`, clock.now() + i);
    clock.advance(100);
    await Promise.all([a.runDue(), b.runDue(), a.runDue(), b.runDue()]);
    expect(fired.length).toBe(20);
    expect(new Set(fired.map((f) => f.slice(2))).size).toBe(20);
    await a.close();
    await b.close();
    db2.close();
  });

  it("a dead holder's lease is taken over after it expires", async () => {
    const a = new TimerService({ client: db.client, clock, owner: "a", leaseMs: 1_000 });
    const b = new TimerService({ client: db.client, clock, owner: "b", leaseMs: 1_000 });
    const hang = Promise.withResolvers<void>();
    a.on("t", () => hang.promise); // "a" claims, then never finishes (as if killed)
    const fired: string[] = [];
    b.on("t", (t) => void fired.push(t.key));
    await a.schedule("t", "job", clock.now());
    const aPass = a.runDue();
    await until(async () => (await a.get("t", "job"))?.leaseOwner === "a");
    expect(await b.runDue()).toBe(0); // leased by a
    clock.advance(999);
    expect(await b.runDue()).toBe(0);
    clock.advance(1);
    expect(await b.runDue()).toBe(1);
    expect(fired).toEqual(["job"]);
    hang.resolve();
    await aPass;
    expect(await a.get("t", "job")).toBeNull();
    await a.close();
    await b.close();
  });

  it("started with the real clock, fires without polling delay and re-arms for earlier timers", async () => {
    const timers = new TimerService({ client: db.client, refreshMs: 60_000 });
    const fired: string[] = [];
    timers.on("rt", (t) => void fired.push(t.key));
    await timers.schedule("rt", "late", Date.now() + 30_000);
    timers.start();
    // armed for +30 s (refresh is 60 s); an earlier timer must re-arm it
    await timers.schedule("rt", "soon", Date.now() + 20);
    await until(() => fired.includes("soon"), 5_000);
    expect(fired).toEqual(["soon"]);
    await timers.close();
  });

  it("a failing handler keeps its timer for after the lease", async () => {
    const timers = new TimerService({ client: db.client, clock, leaseMs: 500 });
    let calls = 0;
    timers.on("f", () => {
      calls++;
      if (calls === 1) throw new Error("boom");
    });
    await timers.schedule("f", "k", clock.now());
    await timers.runDue();
    expect((await timers.get("f", "k"))?.dueAt).toBe(1_000_500);
    clock.advance(500);
    await timers.runDue();
    expect(calls).toBe(2);
    expect(await timers.get("f", "k")).toBeNull();
    await timers.close();
  });
});
