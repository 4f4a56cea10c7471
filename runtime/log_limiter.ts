/**
 * Tenant log lines, bounded: at most `perSecond` lines per tenant per second reach the logger
 * (tenant `console.*` output and the errors Worky logs for a tenant alike); the rest are counted
 * and reported as one line per tenant when the second is over. A tenant that throws or logs on
 * every request of a flood would otherwise make the host serialize and write thousands of lines a
 * second for it (measured: stack traces and JSON lines were ~20 % of the host thread's busy time
 * in a flood of throwing tenants). Entries without a tenant pass untouched.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { LogEntry, Logger } from "./logger.ts";

/** Default lines per tenant per second. */
export const TENANT_LOG_LINES_PER_SECOND = 100;

/**
 * Wraps `inner` so each tenant gets at most `perSecond` lines per second (0 = no limit).
 *
 * @example
 * ```ts
 * import { MemoryLogger } from "./logger.ts";
 * import { ManualClock } from "./clock.ts";
 * import { TenantLogLimiter } from "./log_limiter.ts";
 * const inner = new MemoryLogger();
 * const logger = new TenantLogLimiter(inner, 2, new ManualClock(0));
 * for (let i = 0; i < 5; i++) logger.log({ level: "info", msg: `line ${i}`, tenant: "t" });
 * logger.flush(); // normally a timer's job, once the second is over
 * console.log(inner.entries.length); // 3: two lines, then "3 log lines dropped"
 * ```
 */
export class TenantLogLimiter implements Logger {
  readonly #counts = new Map<string, number>();
  readonly #dropped = new Map<string, number>();
  #windowStart: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly inner: Logger,
    private readonly perSecond: number = TENANT_LOG_LINES_PER_SECOND,
    private readonly clock: Clock = { now: () => Date.now() },
  ) {
    this.#windowStart = clock.now();
  }

  log(entry: LogEntry): void {
    const tenant = entry.tenant;
    if (tenant === undefined || this.perSecond <= 0) return this.inner.log(entry);
    if (this.clock.now() - this.#windowStart >= 1000) this.flush();
    const n = (this.#counts.get(tenant) ?? 0) + 1;
    this.#counts.set(tenant, n);
    if (n <= this.perSecond) return this.inner.log(entry);
    this.#dropped.set(tenant, (this.#dropped.get(tenant) ?? 0) + 1);
    // report even if the tenant goes quiet now
    this.#timer ??= setTimeout(() => this.flush(), 1000);
    Deno.unrefTimer(this.#timer);
  }

  /** Ends the current second: reports what was dropped, per tenant, and starts a new one. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [tenant, n] of this.#dropped) {
      this.inner.log({
        level: "warn",
        msg: `tenant "${tenant}": ${n} log lines dropped (over ${this.perSecond} a second)`,
        code: "ERR_RATE_LIMITED",
        tenant,
        dropped: n,
      });
    }
    this.#dropped.clear();
    this.#counts.clear();
    this.#windowStart = this.clock.now();
  }
}
