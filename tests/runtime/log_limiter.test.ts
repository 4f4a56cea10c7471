/**
 * Tenant log lines are bounded per tenant per second: the rest are counted and reported once the
 * second is over; other tenants and the server's own lines are untouched. A line the same as one
 * already written for the tenant in that second folds into a count. Unit (ManualClock) and end to
 * end (a real server: a tenant logging 300 lines in one request, a tenant throwing on every one).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../runtime/clock.ts";
import { type LogEntry, MemoryLogger } from "../../runtime/logger.ts";
import { TenantLogLimiter } from "../../runtime/log_limiter.ts";
import { type Fixture, startFixture, until } from "../_helpers/fixture.ts";

const line = (tenant: string | undefined, i: number): LogEntry => ({
  level: "info",
  msg: `line ${i}`,
  ...(tenant ? { tenant } : {}),
});

describe("TenantLogLimiter", () => {
  it("passes perSecond lines per tenant, then reports how many it dropped", () => {
    const inner = new MemoryLogger();
    const clock = new ManualClock(0);
    const logger = new TenantLogLimiter(inner, 10, clock);
    for (let i = 0; i < 25; i++) logger.log(line("noisy", i));
    for (let i = 0; i < 5; i++) logger.log(line("quiet", i));
    for (let i = 0; i < 30; i++) logger.log(line(undefined, i)); // the server's own lines
    expect(inner.entries.filter((e) => e.tenant === "noisy")).toHaveLength(10);
    expect(inner.entries.filter((e) => e.tenant === "quiet")).toHaveLength(5);
    expect(inner.entries.filter((e) => e.tenant === undefined)).toHaveLength(30);
    clock.advance(1000);
    logger.log(line("noisy", 99)); // a new second: reported, then passed
    const report = inner.entries.find((e) => e.dropped !== undefined);
    expect(report).toMatchObject({ tenant: "noisy", dropped: 15, code: "ERR_RATE_LIMITED" });
    expect(report!.msg).toBe('tenant "noisy": 15 log lines dropped (over 10 a second)');
    expect(inner.entries.at(-1)).toMatchObject({ tenant: "noisy", msg: "line 99" });
  });

  it("folds a tenant's repeated lines into one count per message when the second ends", () => {
    const inner = new MemoryLogger();
    const clock = new ManualClock(0);
    const logger = new TenantLogLimiter(inner, 3, clock);
    const error = (msg: string, requestId: string): LogEntry => ({
      level: "error",
      msg,
      tenant: "t",
      requestId,
    });
    for (let i = 0; i < 40; i++) {
      logger.log(error("Error: crash\n    at fetch (t.ts:1:7)", `r${i}`));
    }
    logger.log({ level: "warn", msg: "Error: crash\n    at fetch (t.ts:1:7)", tenant: "t" });
    logger.log(error("Error: other", "x"));
    logger.log({ level: "error", msg: "Error: crash\n    at fetch (t.ts:1:7)", tenant: "u" });
    // the first of each, with its request id; another level or tenant is another line; repeats
    // don't use up the tenant's 3 lines a second
    expect(inner.entries.map((e) => [e.tenant, e.level, e.requestId])).toEqual([
      ["t", "error", "r0"],
      ["t", "warn", undefined],
      ["t", "error", "x"],
      ["u", "error", undefined],
    ]);
    clock.advance(1000);
    logger.log(error("Error: crash\n    at fetch (t.ts:1:7)", "r40")); // a new second
    expect(inner.entries.slice(4)).toEqual([
      {
        level: "error",
        msg: 'tenant "t": the line "Error: crash" repeated 39 more times within a second',
        tenant: "t",
        repeated: 39,
      },
      {
        level: "error",
        msg: "Error: crash\n    at fetch (t.ts:1:7)",
        tenant: "t",
        requestId: "r40",
      },
    ]);
  });

  it("counts a line over the limit as dropped, not as a repeat, and cuts long messages", () => {
    const inner = new MemoryLogger();
    const logger = new TenantLogLimiter(inner, 1, new ManualClock(0));
    logger.log({ level: "info", msg: "a".repeat(300), tenant: "t" });
    logger.log({ level: "info", msg: "b", tenant: "t" }); // over the limit: dropped
    logger.log({ level: "info", msg: "b", tenant: "t" }); // still not written: dropped again
    logger.log({ level: "info", msg: "a".repeat(300), tenant: "t" }); // a repeat
    logger.flush();
    expect(inner.entries.slice(1).map((e) => [e.msg, e.repeated, e.dropped])).toEqual([
      [
        `tenant "t": the line "${"a".repeat(119)}…" repeated 1 more time within a second`,
        1,
        undefined,
      ],
      ['tenant "t": 2 log lines dropped (over 1 a second)', undefined, 2],
    ]);
  });

  it("0 means no limit", () => {
    const inner = new MemoryLogger();
    const logger = new TenantLogLimiter(inner, 0, new ManualClock(0));
    for (let i = 0; i < 500; i++) logger.log(line("t", i));
    expect(inner.entries).toHaveLength(500);
  });
});

describe("a tenant flooding the log", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      "t.ts": `export default { fetch() {
        for (let i = 0; i < 300; i++) console.log("spam", i);
        return new Response("ok");
      } };`,
      "worky.toml": `[tenants.spam]\nmodule = "t.ts"\nroutes = ["*/spam/*"]\n`,
    }, { tenantLogLinesPerSecond: 50 });
  });
  afterAll(() => fx?.close());

  it("gets 50 lines a second through, and one line saying how many were dropped", async () => {
    expect(await (await fx.fetch("/spam/")).text()).toBe("ok");
    await until(() => fx.logger.entries.some((e) => e.dropped !== undefined), 5_000);
    const spam = fx.logger.entries.filter((e) => e.tenant === "spam" && /^spam/.test(e.msg));
    const dropped = fx.logger.entries.find((e) => e.dropped !== undefined)!.dropped as number;
    expect(spam.length).toBeLessThanOrEqual(50);
    expect(spam.length + dropped).toBeGreaterThanOrEqual(300);
  });
});

describe("a tenant failing on every request", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      "t.ts": `export default { fetch() { throw new Error("always"); } };`,
      "worky.toml": `[tenants.fails]\nmodule = "t.ts"\nroutes = ["*/fails/*"]\n`,
    });
  });
  afterAll(() => fx?.close());

  it("logs its stack trace once a second, then how often it repeated", async () => {
    for (let i = 0; i < 20; i++) expect((await fx.fetch("/fails/")).status).toBe(500);
    await until(() => fx.logger.entries.some((e) => e.repeated !== undefined), 5_000);
    const thrown = fx.logger.entries.filter((e) =>
      e.tenant === "fails" && e.repeated === undefined && /Error: always/.test(e.msg)
    );
    const repeated = fx.logger.entries.filter((e) => e.tenant === "fails" && e.repeated);
    // each distinct line once a second (20 requests take well under the seconds this allows)
    expect(thrown.length).toBeLessThan(20);
    // every failure is accounted for: written or counted
    const lines = (m: RegExp) =>
      thrown.filter((e) => m.test(e.msg)).length +
      repeated.filter((e) => m.test(e.msg)).reduce((n, e) => n + (e.repeated as number), 0);
    expect(lines(/^Error: always|"Error: always"/)).toBe(20);
  });
});
