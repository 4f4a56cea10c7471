/**
 * A token bucket on an injected clock: `rate` tokens per second, holding at
 * most `burst`. Used for per-tenant and per-client-IP request rate limits.
 */
import type { Clock } from "../../runtime/clock.ts";

/**
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * import { ManualClock } from "../../runtime/clock.ts";
 * const clock = new ManualClock(0);
 * const bucket = new TokenBucket(1, 1, clock);
 * console.log(bucket.take(), bucket.take()); // 0 1000  (ms to wait; 0 = taken)
 * clock.advance(1000);
 * console.log(bucket.take()); // 0
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(readonly rate: number, readonly burst: number, readonly clock: Clock) {
    this.#tokens = burst;
    this.#at = clock.now();
  }

  #refill(): void {
    const now = this.clock.now();
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    }
    this.#at = now;
  }

  /** Takes one token: returns 0, or the ms until one is available (nothing taken). */
  take(): number {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.rate - 1e-6));
  }

  /** True when the bucket is full (an idle key that can be forgotten). */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.burst;
  }
}

/** Token buckets per key (client IP), forgetting full ones when the map grows. */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(readonly rate: number, readonly clock: Clock, readonly maxKeys = 100_000) {}

  /** Takes a token for `key`: 0, or ms until one is available. */
  take(key: string): number {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#prune();
      b = new TokenBucket(this.rate, Math.max(1, this.rate), this.clock);
      this.#buckets.set(key, b);
    }
    return b.take();
  }

  #prune(): void {
    for (const [k, b] of this.#buckets) if (b.full) this.#buckets.delete(k);
    // still full of active keys: drop the oldest half rather than grow without bound
    if (this.#buckets.size >= this.maxKeys) {
      let n = this.#buckets.size / 2;
      for (const k of this.#buckets.keys()) {
        if (n-- <= 0) break;
        this.#buckets.delete(k);
      }
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
