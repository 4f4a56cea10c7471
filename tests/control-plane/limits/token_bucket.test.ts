import { expect, it } from "vitest";
import { ManualClock } from "../../../runtime/clock.ts";
import { KeyedBuckets, TokenBucket } from "../../../control-plane/limits/token_bucket.ts";

it("a token bucket allows its burst, then refills at its rate", () => {
  const clock = new ManualClock(0);
  const b = new TokenBucket(2, 2, clock);
  expect([b.take(), b.take()]).toEqual([0, 0]);
  expect(b.take()).toBe(500); // one token every 500 ms
  clock.advance(499);
  expect(b.take()).toBe(1);
  clock.advance(1);
  expect(b.take()).toBe(0);
  clock.advance(10_000);
  expect(b.full).toBe(true); // never more than the burst
  expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 500]);
});

it("keyed buckets are independent per key and forget idle keys when full", () => {
  const clock = new ManualClock(0);
  const k = new KeyedBuckets(1, clock, 2);
  expect([k.take("a"), k.take("a"), k.take("b")]).toEqual([0, 1000, 0]);
  clock.advance(1000);
  k.take("c"); // map at its cap: full (idle) buckets are dropped first
  expect(k.size).toBeLessThanOrEqual(2);
});
