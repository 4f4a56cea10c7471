/**
 * Timer service additions used by Durable Object alarms: `detached`
 * handlers (a slow handler does not hold back other timers; `idle()` waits
 * for it; it is not claimed twice in its process) and `{ dueAt, payload }`
 * results (keep the timer with a new payload, unless it was re-scheduled
 * while the handler ran).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../../control-plane/storage/database.ts";
import { TimerService } from "../../../control-plane/scheduler/timer_service.ts";
import { ManualClock } from "../../../runtime/clock.ts";

let dir: string;
let db: Database;
let clock: ManualClock;

beforeEach(async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-timers-detached-" });
  db = await openDatabase(`file:${dir}/worky.db`);
  clock = new ManualClock(1_000_000);
});
afterEach(async () => {
  db.close();
  await Deno.remove(dir, { recursive: true });
});

describe("TimerService detached handlers and payload updates", () => {
  it("runs a detached handler outside the pass; other timers fire meanwhile; idle() waits", async () => {
    const timers = new TimerService({ client: db.client, clock, leaseMs: 1_000 });
    const release = Promise.withResolvers<void>();
    const slowCalls: number[] = [];
    timers.on("slow", async (t) => {
      slowCalls.push(t.dueAt);
      await release.promise;
    }, { detached: true });
    const quick: string[] = [];
    timers.on("quick", (t) => void quick.push(t.key));
    await timers.schedule("slow", "s", clock.now());
    expect(await timers.runDue()).toBe(1); // returns while "slow" still runs
    expect(slowCalls.length).toBe(1);
    await timers.schedule("quick", "q", clock.now());
    expect(await timers.runDue()).toBe(1);
    expect(quick).toEqual(["q"]);
    // its lease runs out while it still runs here: this process does not claim it again
    clock.advance(5_000);
    expect(await timers.runDue()).toBe(0);
    expect(slowCalls.length).toBe(1);
    let idle = false;
    const waiting = timers.idle().then(() => idle = true);
    await Promise.resolve();
    expect(idle).toBe(false);
    release.resolve();
    await waiting;
    expect(await timers.get("slow", "s")).toBeNull(); // returned nothing: deleted
    await timers.close();
  });

  it("a { dueAt, payload } result keeps the timer with the new payload", async () => {
    const timers = new TimerService({ client: db.client, clock });
    const seen: unknown[] = [];
    timers.on("retry", (t) => {
      seen.push(t.payload);
      const n = (t.payload as { n: number }).n;
      return n < 2 ? { dueAt: t.dueAt + 10, payload: { n: n + 1 } } : null;
    }, { detached: true });
    await timers.schedule("retry", "r", clock.now(), { n: 0 });
    await timers.runDue();
    await timers.idle();
    expect(await timers.get("retry", "r")).toMatchObject({
      dueAt: 1_000_010,
      payload: { n: 1 },
      leaseOwner: null,
    });
    clock.advance(10);
    await timers.runDue();
    await timers.idle();
    clock.advance(10);
    await timers.runDue();
    await timers.idle();
    expect(seen).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(await timers.get("retry", "r")).toBeNull();
    await timers.close();
  });

  it("a re-schedule while the handler runs wins over its { dueAt, payload } result", async () => {
    const timers = new TimerService({ client: db.client, clock });
    timers.on("retry", async (t) => {
      await timers.schedule("retry", t.key, 2_000_000, { set: "meanwhile" });
      return { dueAt: t.dueAt + 10, payload: { set: "by handler" } };
    });
    await timers.schedule("retry", "r", clock.now(), { set: "first" });
    expect(await timers.runDue()).toBe(1);
    expect(await timers.get("retry", "r")).toMatchObject({
      dueAt: 2_000_000,
      payload: { set: "meanwhile" },
      leaseOwner: null,
    });
    await timers.close();
  });
});
