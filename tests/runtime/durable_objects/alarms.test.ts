/**
 * Durable Object alarms are timers of the one timer service (kind
 * "do-alarm"): the row and its retry payload, firing on time from the
 * started service with no test help, setAlarm/getAlarm inside alarm(), a
 * restart, and the migration that moves old `durable_object_alarms` rows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "drizzle-orm/libsql/migrator";
import { type Fixture, until } from "../../_helpers/fixture.ts";
import { ManualClock } from "../../../runtime/clock.ts";
import { startDoFixture, storeCall } from "./_tenant.ts";
import { DO_ALARM_TIMER } from "../../../control-plane/durable_objects/alarms.ts";
import { idFromName, idNamespace } from "../../../runtime/bindings/durable_object/id.worker.ts";
import {
  applyMigrations,
  MIGRATIONS_FOLDER,
  openDatabase,
} from "../../../control-plane/storage/database.ts";

const T0 = 1_700_000_000_000;
const clock = new ManualClock(T0);
let fx: Fixture;
beforeAll(async () => {
  fx = await startDoFixture({ clock });
});
afterAll(async () => {
  await fx?.close();
});

const call = (name: string, method: string, ...args: unknown[]) =>
  storeCall(fx, name, method, ...args);

/** The `do-alarm` timer of the Store object `name`: key `t/Store/<idFromName>`. */
async function timerOf(name: string) {
  const id = idFromName(idNamespace("t", "Store"), name).toString();
  return await fx.server.scheduler.timers.get(DO_ALARM_TIMER, `t/Store/${id}`);
}

describe("Durable Object alarms on the timer service", () => {
  it(
    "are do-alarm timer rows: due time, retryCount in the payload, gone after firing",
    async () => {
      const alarms = fx.server.durableObjects.alarms;
      await call("row", "put", "fail", 1);
      await call("row", "setAlarm", clock.now() + 5_000);
      expect(await timerOf("row")).toMatchObject({
        dueAt: clock.now() + 5_000,
        payload: { retryCount: 0 },
        leaseOwner: null,
      });
      clock.advance(5_000);
      expect(await alarms.runDue()).toEqual({ fired: 0, failed: 1, dropped: 0 });
      // the retry lives in the same row; getAlarm shows its due time
      expect(await timerOf("row")).toMatchObject({
        dueAt: clock.now() + 2_000,
        payload: { retryCount: 1 },
      });
      expect(await call("row", "getAlarm")).toBe(clock.now() + 2_000);
      clock.advance(2_000);
      expect(await alarms.runDue()).toEqual({ fired: 1, failed: 0, dropped: 0 });
      expect(await timerOf("row")).toBeNull();
      expect(await call("row", "get", "alarms")).toEqual([
        { retryCount: 0, isRetry: false },
        { retryCount: 1, isRetry: true },
      ]);
      // the old table is gone
      const tables = await fx.server.db.client.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'durable_object_alarms'",
      );
      expect(tables.rows.length).toBe(0);
    },
    30_000,
  );

  it("fire on time from the started timer service, without runDue", async () => {
    await call("ontime", "setAlarm", clock.now() + 1_000);
    clock.advance(1_000);
    // the server's timer service re-reads the table every second (real time) and fires it
    await until(async () =>
      (await call("ontime", "get", "alarms") as unknown[] | null)?.length === 1
    );
    expect(await call("ontime", "get", "alarms")).toEqual([{ retryCount: 0, isRetry: false }]);
    await until(async () => (await call("ontime", "getAlarm")) === null);
  }, 30_000);

  it(
    "inside alarm(): getAlarm is null until setAlarm; the new alarm outlives the firing",
    async () => {
      const alarms = fx.server.durableObjects.alarms;
      const next = clock.now() + 60_000;
      await call("rearm", "put", "rearm", next);
      await call("rearm", "setAlarm", clock.now() + 10);
      clock.advance(10);
      expect(await alarms.runDue()).toEqual({ fired: 1, failed: 0, dropped: 0 });
      expect(await call("rearm", "get", "seen")).toEqual([null, next]);
      expect(await call("rearm", "getAlarm")).toBe(next);
      clock.set(next);
      expect(await alarms.runDue()).toEqual({ fired: 1, failed: 0, dropped: 0 });
      expect((await call("rearm", "get", "alarms") as unknown[]).length).toBe(2);
      expect(await call("rearm", "getAlarm")).toBe(null);
    },
    30_000,
  );

  it("a failing alarm() that set a new alarm gets that alarm, not a retry", async () => {
    const alarms = fx.server.durableObjects.alarms;
    const next = clock.now() + 30_000;
    await call("rearmfail", "put", "fail", 1);
    await call("rearmfail", "put", "rearm", next);
    await call("rearmfail", "setAlarm", clock.now() + 10);
    clock.advance(10);
    expect(await alarms.runDue()).toEqual({ fired: 0, failed: 1, dropped: 0 });
    expect(await call("rearmfail", "getAlarm")).toBe(next);
    expect((await timerOf("rearmfail"))?.payload).toEqual({ retryCount: 0 });
    clock.advance(2_000); // the retry time: nothing fires
    expect(await alarms.runDue()).toEqual({ fired: 0, failed: 0, dropped: 0 });
    clock.set(next);
    expect(await alarms.runDue()).toEqual({ fired: 1, failed: 0, dropped: 0 });
    expect(await call("rearmfail", "get", "alarms")).toEqual([
      { retryCount: 0, isRetry: false },
      { retryCount: 0, isRetry: false },
    ]);
  }, 30_000);

  it("deleteAlarm removes the timer", async () => {
    await call("del", "setAlarm", clock.now() + 1_000);
    expect(await timerOf("del")).not.toBeNull();
    expect(await call("del", "deleteAlarm")).toBe(null);
    expect(await timerOf("del")).toBeNull();
    clock.advance(1_000);
    expect(await fx.server.durableObjects.alarms.runDue()).toEqual({
      fired: 0,
      failed: 0,
      dropped: 0,
    });
    expect(await call("del", "get", "alarms")).toBe(null);
  }, 30_000);
});

it("an alarm survives a restart of the server (it is a timers row)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "worky-do-alarm-restart-" });
  const dbUrl = `file:${dir}/worky.db`;
  const c = new ManualClock(T0);
  const first = await startDoFixture({ clock: c, dbUrl });
  let second: Fixture | undefined;
  try {
    await storeCall(first, "keep", "setAlarm", c.now() + 30_000);
    await first.close();
    second = await startDoFixture({ clock: c, dbUrl });
    expect(await storeCall(second, "keep", "getAlarm")).toBe(c.now() + 30_000);
    c.advance(30_000);
    expect(await second.server.durableObjects.alarms.runDue()).toEqual({
      fired: 1,
      failed: 0,
      dropped: 0,
    });
    expect(await storeCall(second, "keep", "get", "alarms")).toEqual([
      { retryCount: 0, isRetry: false },
    ]);
  } finally {
    await first.close();
    await second?.close();
    await Deno.remove(dir, { recursive: true });
  }
}, 60_000);

it("the migration moves pending durable_object_alarms rows onto timers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "worky-do-alarm-migration-" });
  try {
    // the migrations as they were before this one
    const old = `${dir}/migrations`;
    await Deno.mkdir(`${old}/meta`, { recursive: true });
    const journal = JSON.parse(await Deno.readTextFile(`${MIGRATIONS_FOLDER}/meta/_journal.json`));
    const cut = journal.entries.findIndex((e: { tag: string }) =>
      e.tag.endsWith("_do_alarms_on_timers")
    );
    expect(cut).toBeGreaterThan(0);
    journal.entries = journal.entries.slice(0, cut);
    await Deno.writeTextFile(`${old}/meta/_journal.json`, JSON.stringify(journal));
    for (const e of journal.entries as { tag: string }[]) {
      await Deno.copyFile(`${MIGRATIONS_FOLDER}/${e.tag}.sql`, `${old}/${e.tag}.sql`);
    }
    const database = await openDatabase(`file:${dir}/worky.db`, { migrate: false });
    try {
      await migrate(database.db, { migrationsFolder: old });
      await database.client.execute({
        sql: "INSERT INTO durable_object_alarms (object_key, tenant, class_name, object_id, " +
          "due_at, scheduled_at, retry_count) VALUES (?, ?, ?, ?, ?, ?, ?)",
        args: ["t/Store/abc", "t", "Store", "abc", 1234, 1000, 2],
      });
      await applyMigrations(database.db);
      const rows = await database.client.execute(
        "SELECT id, kind, key, due_at, payload FROM timers",
      );
      expect(rows.rows.map((r) => ({ ...r }))).toEqual([{
        id: "do-alarm:t/Store/abc",
        kind: DO_ALARM_TIMER,
        key: "t/Store/abc",
        due_at: 1234,
        payload: '{"retryCount":2}',
      }]);
    } finally {
      database.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
