/** Crash-loop backoff on an injected clock: threshold, doubling cooldowns, cap, reset on success. */
import { describe, expect, it } from "vitest";
import { CrashBackoff } from "../../runtime/crash_backoff.ts";
import { ManualClock } from "../../runtime/clock.ts";

function make(clock = new ManualClock(1_000_000)) {
  return { clock, b: new CrashBackoff({ tenant: "bad", clock, maxMs: 8000 }) };
}

describe("CrashBackoff", () => {
  it("lets events run until 3 deaths within 10 s", () => {
    const { clock, b } = make();
    b.died();
    clock.advance(4000);
    b.died();
    expect(b.refusal()).toBeUndefined();
    clock.advance(4000);
    b.died();
    const err = b.refusal()!;
    expect(err.code).toBe("ERR_TENANT_CRASH_LOOP");
    expect(err.status).toBe(503);
    expect(err.message).toBe(
      'tenant "bad" is crash-looping (its workers died repeatedly); retrying in 1 s',
    );
    expect(err.retryAfterMs).toBe(1000);
  });

  it("says how many deaths its window holds (0 for one during a cooldown)", () => {
    const { clock, b } = make();
    expect(b.died()).toBe(1);
    clock.advance(4000);
    expect(b.died()).toBe(2); // the pool moves an "auto" tenant into a cell here
    clock.advance(7000); // the first death left the window
    expect(b.died()).toBe(2);
    expect(b.died()).toBe(3); // a cooldown starts
    expect(b.died()).toBe(0); // an event admitted before it
    b.succeeded();
    expect(b.died()).toBe(1);
  });

  it("forgets deaths older than the window", () => {
    const { clock, b } = make();
    b.died();
    b.died();
    clock.advance(10_001);
    b.died();
    b.died();
    expect(b.refusal()).toBeUndefined(); // 2 in the window
    b.died();
    expect(b.refusal()).toBeDefined();
  });

  it("doubles the cooldown on each further streak, up to the cap", () => {
    const { clock, b } = make();
    b.died();
    b.died();
    b.died();
    const cooldowns: number[] = [];
    for (let i = 0; i < 6; i++) {
      cooldowns.push(b.remainingMs());
      clock.advance(b.remainingMs());
      expect(b.refusal()).toBeUndefined(); // one event may try again
      b.died(); // and its worker dies: the next, longer cooldown starts at once
    }
    expect(cooldowns).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(b.refusal()!.message).toMatch(/retrying in 8 s$/);
  });

  it("ignores deaths of events admitted before a cooldown began", () => {
    const { clock, b } = make();
    b.died();
    b.died();
    b.died();
    b.died();
    b.died();
    expect(b.remainingMs()).toBe(1000);
    clock.advance(500);
    expect(b.refusal()!.message).toMatch(/retrying in 1 s$/);
  });

  it("a success resets the streak", () => {
    const { clock, b } = make();
    for (let i = 0; i < 3; i++) b.died();
    clock.advance(1000);
    b.died();
    expect(b.remainingMs()).toBe(2000);
    clock.advance(2000);
    b.succeeded();
    expect(b.troubled).toBe(false);
    b.died();
    b.died();
    expect(b.refusal()).toBeUndefined();
    b.died();
    expect(b.remainingMs()).toBe(1000);
  });
});
