/**
 * Tenant log lines are bounded per tenant per second: the rest are counted and reported once the
 * second is over; other tenants and the server's own lines are untouched. Unit (ManualClock) and
 * end to end (a real server, a tenant logging 300 lines in one request).
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
