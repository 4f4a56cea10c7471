/**
 * Crash-loop backoff for one deployment's pool. Every worker death costs a
 * respawn (~15–30 ms of CPU on the host's cores); a tenant whose workers die
 * on every request (throws, loops, exits, recursion, OOM) would spend the
 * host's CPU on respawns and push every other tenant's latency up. After
 * `threshold` deaths within `windowMs`, new events fail fast for a cooldown
 * that doubles on each further streak (`baseMs · 2^(streak-1)`, at most
 * `maxMs`). After a cooldown one death is enough to start the next one; an
 * event that completes on a live worker resets everything.
 */
import type { Clock } from "./clock.ts";
import { WorkyError } from "./errors.ts";

export interface CrashBackoffOptions {
  tenant: string;
  clock: Clock;
  /** Deaths within `windowMs` that start a cooldown (default 3). */
  threshold?: number;
  /** Default 10 s. */
  windowMs?: number;
  /** The first cooldown (default 1 s). */
  baseMs?: number;
  /** The longest cooldown (default 30 s). */
  maxMs?: number;
}

/**
 * Counts a tenant's worker deaths and decides when it is crash-looping.
 *
 * @example
 * ```ts
 * import { CrashBackoff } from "./crash_backoff.ts";
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock(0);
 * const b = new CrashBackoff({ tenant: "bad", clock });
 * b.died(); b.died(); b.died();
 * console.log(b.refusal()?.message); // tenant "bad" is crash-looping (…); retrying in 1 s
 * clock.advance(1000);
 * console.log(b.refusal()); // undefined: one event may try again
 * ```
 */
export class CrashBackoff {
  readonly #o: Required<CrashBackoffOptions>;
  #deaths: number[] = [];
  /** Cooldowns started since the last success (0 = healthy). */
  #streak = 0;
  #until = 0;

  constructor(options: CrashBackoffOptions) {
    this.#o = { threshold: 3, windowMs: 10_000, baseMs: 1000, maxMs: 30_000, ...options };
  }

  /** True while the tenant has had deaths or cooldowns since its last success. */
  get troubled(): boolean {
    return this.#streak > 0 || this.#deaths.length > 0;
  }

  /** Cooldowns in a row (0 = not crash-looping). */
  get streak(): number {
    return this.#streak;
  }

  /**
   * A worker of this tenant died (crash, timeout, memory, exit). Returns how many deaths the
   * window holds with this one (0 for a death from an event admitted before a cooldown): the
   * pool moves a tenant into a cell at 2, before its cooldown starts at `threshold`.
   */
  died(): number {
    const now = this.#o.clock.now();
    if (now < this.#until) return 0; // a death from an event admitted before the cooldown
    this.#deaths.push(now);
    while (this.#deaths.length && this.#deaths[0] <= now - this.#o.windowMs) this.#deaths.shift();
    const deaths = this.#deaths.length;
    if (this.#streak > 0 || deaths >= this.#o.threshold) {
      this.#streak++;
      const ms = Math.min(this.#o.maxMs, this.#o.baseMs * 2 ** (this.#streak - 1));
      this.#until = now + ms;
      this.#deaths = [];
    }
    return deaths;
  }

  /** An event completed on a live worker: the tenant is healthy again. */
  succeeded(): void {
    this.#streak = 0;
    this.#deaths = [];
    this.#until = 0;
  }

  /** Milliseconds of cooldown left (0 = events may run). */
  remainingMs(): number {
    return Math.max(0, this.#until - this.#o.clock.now());
  }

  /** The error to fail an event with during a cooldown; undefined when events may run. */
  refusal(): WorkyError | undefined {
    const left = this.remainingMs();
    if (left === 0) return undefined;
    const s = Math.max(1, Math.ceil(left / 1000));
    const err = new WorkyError(
      "ERR_TENANT_CRASH_LOOP",
      `tenant "${this.#o.tenant}" is crash-looping (its workers died repeatedly); ` +
        `retrying in ${s} s`,
    );
    err.retryAfterMs = left;
    return err;
  }
}
