/**
 * Alarms (firing, retries with backoff, giving up) and idle eviction, with
 * an injected clock: the tests move time and fire what is due on the timer
 * service (`alarms.runDue()` = timers.runDue + wait for the alarms) and call
 * the eviction sweep themselves. Alarms are set later than the clock's "now",
 * so the server's started timer service (real timers, same clock) never fires
 * one before the test moves time.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../../_helpers/fixture.ts";
import { ManualClock } from "../../../runtime/clock.ts";
import { startDoFixture, storeCall } from "./_tenant.ts";
import { MAX_ALARM_RETRIES } from "../../../control-plane/durable_objects/alarms.ts";

const T0 = 1_700_000_000_000;
const clock = new ManualClock(T0);
let fx: Fixture;
beforeAll(async () => {
  fx = await startDoFixture({ clock, durableObjects: { idleMs: 10_000 } });
});
afterAll(async () => {
  await fx?.close();
});

const call = (name: string, method: string, ...args: unknown[]) =>
  storeCall(fx, name, method, ...args);

it("fires an alarm when it is due, once", async () => {
  const dos = fx.server.durableObjects;
  expect(await call("al1", "setAlarm", clock.now() + 60_000)).toBe(clock.now() + 60_000);
  expect(await dos.alarms.runDue()).toEqual({ fired: 0, failed: 0, dropped: 0 });
  clock.advance(60_000);
  expect(await dos.alarms.runDue()).toEqual({ fired: 1, failed: 0, dropped: 0 });
  expect(await call("al1", "get", "alarms")).toEqual([{ retryCount: 0, isRetry: false }]);
  expect(await call("al1", "getAlarm")).toBe(null); // gone after firing
  clock.advance(60_000);
  expect(await dos.alarms.runDue()).toEqual({ fired: 0, failed: 0, dropped: 0 });
}, 30_000);

it("retries a failing alarm with exponential backoff from 2 s", async () => {
  const dos = fx.server.durableObjects;
  await call("al2", "put", "fail", 2);
  await call("al2", "setAlarm", clock.now() + 1_000);
  clock.advance(1_000);
  expect(await dos.alarms.runDue()).toMatchObject({ fired: 0, failed: 1 });
  clock.advance(1_999);
  expect(await dos.alarms.runDue()).toMatchObject({ fired: 0, failed: 0 });
  clock.advance(1);
  expect(await dos.alarms.runDue()).toMatchObject({ fired: 0, failed: 1 });
  clock.advance(3_999);
  expect(await dos.alarms.runDue()).toMatchObject({ fired: 0, failed: 0 });
  clock.advance(1);
  expect(await dos.alarms.runDue()).toMatchObject({ fired: 1, failed: 0 });
  expect(await call("al2", "get", "alarms")).toEqual([
    { retryCount: 0, isRetry: false },
    { retryCount: 1, isRetry: true },
    { retryCount: 2, isRetry: true },
  ]);
});

it(`gives up after ${MAX_ALARM_RETRIES} retries`, async () => {
  const dos = fx.server.durableObjects;
  await call("al3", "put", "fail", 1000);
  await call("al3", "setAlarm", clock.now() + 1);
  let dropped = 0;
  for (let i = 0; i <= MAX_ALARM_RETRIES; i++) {
    clock.advance(2_000 * 2 ** i);
    const r = await dos.alarms.runDue();
    expect(r.failed).toBe(1);
    dropped += r.dropped;
  }
  expect(dropped).toBe(1);
  expect((await call("al3", "get", "alarms") as unknown[]).length).toBe(MAX_ALARM_RETRIES + 1);
  expect(await call("al3", "getAlarm")).toBe(null);
  expect(fx.logger.entries.some((e) => /failed 7 times; dropped/.test(String(e.msg)))).toBe(true);
});

it("evicts idle objects and rebuilds them from storage", async () => {
  const directory = fx.server.durableObjects.directory;
  await directory.evictIdle({ all: true });
  expect(await call("ev", "boots")).toBe(1);
  await call("ev", "put", "kept", "yes");
  expect(directory.live).toBe(1);
  clock.advance(9_999);
  expect(await directory.evictIdle()).toBe(0);
  clock.advance(1);
  expect(await directory.evictIdle()).toBe(1);
  expect(directory.live).toBe(0);
  // the constructor runs again (boots counts constructions in storage); nothing is lost
  expect(await call("ev", "boots")).toBe(2);
  expect(await call("ev", "get", "kept")).toBe("yes");
});
