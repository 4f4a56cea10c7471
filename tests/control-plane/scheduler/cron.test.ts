/**
 * Cron triggers end to end: a real server with real workers and a libSQL
 * file; time is a ManualClock and the test fires what is due.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../../_helpers/fixture.ts";
import { ManualClock } from "../../../runtime/clock.ts";
import { listCronRuns } from "../../../control-plane/scheduler/cron_runs.ts";
import { cronOf } from "../../../control-plane/scheduler/cron_config.ts";
import { parseConfig } from "../../../control-plane/config/load_config.ts";
import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";

const MOD = `
export default {
  async fetch() { return new Response("ok"); },
  async scheduled(controller, env, ctx) {
    console.log("tick", controller.type, controller.cron, new Date(controller.scheduledTime).toISOString());
    if (controller.cron === "* * * * * *") {
      while (!(await env.K.get("release"))) await new Promise((r) => setTimeout(r, 5));
    }
    if (controller.cron === "0 0 1 1 *") throw new Error("cron failed on purpose");
  },
};`;

function toml(cron: string): string {
  return `[tenants.jobs]\nmodule = "mod.ts"\n` +
    `routes = ["jobs.localhost/*"]\nkv = ["K"]\ncron = ${cron}\n`;
}

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

async function start(cron: string, clock: ManualClock, dir?: string, watch = false) {
  fx = await startFixture({ "mod.ts": MOD, "worky.toml": toml(cron) }, {
    clock,
    dir,
    watch,
  });
  return fx;
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("cron triggers", () => {
  it("fire scheduled() at the scheduled time with controller fields, and record runs with logs", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 11, 58, 30));
    const f = await start(`["*/5 * * * *"]`, clock);
    const timer = (await f.server.scheduler.timers.list("cron"))[0];
    expect(iso(timer.dueAt)).toBe("2026-01-01T12:00:00.000Z");
    expect(await f.server.scheduler.runDue()).toBe(0);
    clock.set(Date.UTC(2026, 0, 1, 12, 0, 0, 3));
    expect(await f.server.scheduler.runDue()).toBe(1);
    const [run] = await listCronRuns(f.server.db.client, "jobs");
    expect(run).toMatchObject({
      schedule: "*/5 * * * *",
      timezone: "UTC",
      trigger: "schedule",
      outcome: "ok",
      scheduledTime: Date.UTC(2026, 0, 1, 12, 0, 0),
    });
    expect(run.logs.map((l) => l.msg)).toEqual([
      "tick scheduled */5 * * * * 2026-01-01T12:00:00.000Z",
    ]);
    expect(run.startedAt).not.toBeNull();
    expect(run.endedAt).not.toBeNull();
    expect(iso((await f.server.scheduler.timers.list("cron"))[0].dueAt)).toBe(
      "2026-01-01T12:05:00.000Z",
    );
  });

  it("records a handler's error as the run's outcome", async () => {
    const clock = new ManualClock(Date.UTC(2025, 11, 31, 23, 59, 59));
    const f = await start(`["0 0 1 1 *"]`, clock);
    clock.set(Date.UTC(2026, 0, 1));
    await f.server.scheduler.runDue();
    const [run] = await listCronRuns(f.server.db.client, "jobs");
    expect(run.outcome).toBe("error");
    expect(run.error).toContain("cron failed on purpose");
  });

  it("reads schedules in the trigger's time zone across DST changes (Europe/Berlin)", async () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 27, 12));
    const f = await start(
      `[{ schedule = "0 9 * * *", timezone = "Europe/Berlin" }, { schedule = "30 2 * * *", timezone = "Europe/Berlin" }]`,
      clock,
    );
    const fired: string[] = [];
    // walk minute by minute over the spring-forward night and two mornings
    for (let t = clock.now(); t <= Date.UTC(2026, 2, 29, 12); t += 60_000) {
      clock.set(t);
      await f.server.scheduler.runDue();
    }
    for (const run of (await listCronRuns(f.server.db.client, "jobs")).reverse()) {
      fired.push(`${run.schedule}@${iso(run.scheduledTime)}`);
    }
    expect(fired).toEqual([
      "30 2 * * *@2026-03-28T01:30:00.000Z", // 02:30 CET
      "0 9 * * *@2026-03-28T08:00:00.000Z", // 09:00 CET (UTC+1)
      "30 2 * * *@2026-03-29T01:00:00.000Z", // 02:30 does not exist: first time after the gap (03:00 CEST)
      "0 9 * * *@2026-03-29T07:00:00.000Z", // 09:00 CEST (UTC+2)
    ]);
  });

  it("computes autumn DST (last Sunday of October) without running a repeated time twice", () => {
    const cron = cronOf({ schedule: "30 2 * * *", timezone: "Europe/Berlin" });
    const runs = cron.nextRuns(3, new Date(Date.UTC(2026, 9, 24, 12))).map((d) => d.toISOString());
    // 2026-10-25 02:30 happens twice (CEST then CET): one run, at the first
    expect(runs).toEqual([
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
      "2026-10-27T01:30:00.000Z",
    ]);
    const six = cronOf({ schedule: "*/20 * * * * *", timezone: "UTC" });
    expect(six.nextRun(new Date(Date.UTC(2026, 0, 1, 0, 0, 5)))?.toISOString()).toBe(
      "2026-01-01T00:00:20.000Z",
    );
  });

  it("after downtime skips missed runs by default", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 11, 58));
    const f = await start(`["*/5 * * * *"]`, clock);
    const dir = f.dir;
    await f.close();
    // down for an hour
    clock.set(Date.UTC(2026, 0, 1, 13, 1));
    const g = await start(`["*/5 * * * *"]`, clock, dir);
    await g.server.scheduler.runDue();
    const runs = await listCronRuns(g.server.db.client, "jobs");
    expect(runs.map((r) => [r.outcome, iso(r.scheduledTime)])).toEqual([
      ["missed", "2026-01-01T12:00:00.000Z"],
    ]);
    expect(runs[0].logs).toEqual([]);
    expect(iso((await g.server.scheduler.timers.list("cron"))[0].dueAt)).toBe(
      "2026-01-01T13:05:00.000Z",
    );
  });

  it('after downtime runs once to catch up with catch_up = "once"', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 11, 58));
    const cron = `[{ schedule = "*/5 * * * *", catch_up = "once" }]`;
    const f = await start(cron, clock);
    const dir = f.dir;
    await f.close();
    clock.set(Date.UTC(2026, 0, 1, 13, 1));
    const g = await start(cron, clock, dir);
    await g.server.scheduler.runDue();
    await g.server.scheduler.runDue();
    const runs = await listCronRuns(g.server.db.client, "jobs");
    expect(runs.map((r) => [r.trigger, r.outcome])).toEqual([["catch-up", "ok"]]);
    expect(runs[0].logs[0].msg).toContain("2026-01-01T12:00:00.000Z");
  });

  it("does not start a run while the previous one is still going (overrun)", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 0, 500));
    const f = await start(`["* * * * * *"]`, clock);
    clock.set(Date.UTC(2026, 0, 1, 0, 0, 1));
    await f.server.scheduler.timers.runDue(); // starts run 1, which waits for "release"
    clock.set(Date.UTC(2026, 0, 1, 0, 0, 2));
    await f.server.scheduler.timers.runDue(); // run 1 still going
    let runs = await listCronRuns(f.server.db.client, "jobs");
    expect(runs.map((r) => r.outcome)).toEqual(["overrun", "running"]);
    await new LibsqlKvStore(f.server.db).put("jobs/K", "release", new TextEncoder().encode("1"), {
      expiration: null,
      metadata: null,
    });
    await f.server.scheduler.idle();
    clock.set(Date.UTC(2026, 0, 1, 0, 0, 3));
    await f.server.scheduler.runDue();
    runs = await listCronRuns(f.server.db.client, "jobs");
    expect(runs.map((r) => [r.outcome, iso(r.scheduledTime)])).toEqual([
      ["ok", "2026-01-01T00:00:03.000Z"],
      ["overrun", "2026-01-01T00:00:02.000Z"],
      ["ok", "2026-01-01T00:00:01.000Z"],
    ]);
  });

  it("GET /__scheduled?cron=… fires the handler in dev mode", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const f = await start(`["*/5 * * * *"]`, clock, undefined, true);
    const res = await f.fetch("/__scheduled?tenant=jobs&cron=*/5+*+*+*+*");
    expect(res.status).toBe(200);
    const run = await res.json();
    expect(run).toMatchObject({ trigger: "dev", outcome: "ok", schedule: "*/5 * * * *" });
    expect(run.logs[0].msg).toBe("tick scheduled */5 * * * * 2026-01-01T00:00:00.000Z");
    const bad = await f.fetch("/__scheduled?tenant=jobs&cron=1+2+3+4+5");
    expect(bad.status).toBe(404);
    expect((await bad.json()).error.message).toContain('no cron trigger "1 2 3 4 5"');
  });

  it("GET /__scheduled is tenant traffic outside dev mode", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const f = await start(`["*/5 * * * *"]`, clock);
    const res = await f.fetch("/__scheduled?tenant=jobs");
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("ERR_NO_ROUTE");
    await until(async () => (await listCronRuns(f.server.db.client, "jobs")).length === 0);
  });
});

describe("cron config", () => {
  const parse = (cron: string) =>
    parseConfig(
      `[tenants.jobs]\nmodule = "mod.ts"\nroutes = ["jobs.localhost/*"]\ncron = ${cron}\n`,
      { path: "/srv/worky.toml", dir: "/srv", env: {}, fileExists: () => true },
    );

  it("normalizes strings and tables", () => {
    const t = parse(
      `["*/5 * * * *", { schedule = "0 9 * * *", timezone = "Europe/Berlin", catch_up = "once" }]`,
    )
      .tenants[0];
    expect(t.cron).toEqual([
      { schedule: "*/5 * * * *", timezone: "UTC", catchUp: "skip" },
      { schedule: "0 9 * * *", timezone: "Europe/Berlin", catchUp: "once" },
    ]);
  });

  it("rejects a bad expression, naming the tenant and trigger", () => {
    expect(() => parse(`["*/5 * * * *", "61 * * * *"]`)).toThrow(
      /worky\.toml:4: tenants\.jobs\.cron\[1\]: "61 \* \* \* \*" is not a valid cron expression/,
    );
    expect(() => parse(`["* * *"]`)).toThrow(
      /tenants\.jobs\.cron\[0\]: "\* \* \*" is not a valid cron/,
    );
  });

  it("rejects an unknown time zone and catch-up policy", () => {
    expect(() => parse(`[{ schedule = "0 9 * * *", timezone = "Mars/Olympus" }]`)).toThrow(
      /tenants\.jobs\.cron\[0\]: "Mars\/Olympus" is not a known time zone/,
    );
    expect(() => parse(`[{ schedule = "0 9 * * *", catch_up = "all" }]`)).toThrow(
      /tenants\.jobs\.cron\[0\]\.catch_up: must be "skip" or "once", got "all"/,
    );
  });
});
