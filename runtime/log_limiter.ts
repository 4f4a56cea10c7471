/**
 * Tenant log lines, bounded: at most `perSecond` lines per tenant per second reach the logger
 * (tenant `console.*` output and the errors Worky logs for a tenant alike); the rest are counted
 * and reported as one line per tenant when the second is over. A tenant that throws or logs on
 * every request of a flood would otherwise make the host serialize and write thousands of lines a
 * second for it (measured: stack traces and JSON lines were ~20 % of the host thread's busy time
 * in a flood of throwing tenants). Entries without a tenant pass untouched.
 *
 * Repeats fold: a tenant's line with the same level and message as one already written for it
 * in the same second is counted, not written, and one line per message says how many there were
 * when the second is over (as syslog's "message repeated N times"). The first keeps its request
 * id. Why: in a storm of failing tenants most lines are the same stack trace or the same
 * "crash-looping" refusal once per request (measured, session 11: 2,698 of the 2,923 lines a
 * cells storm logged repeated a line of the same tenant and second), and each costs the host
 * thread a serialization and a write, and the supervisor a copy.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { LogEntry, Logger } from "./logger.ts";

/** Default lines per tenant per second. */
export const TENANT_LOG_LINES_PER_SECOND = 100;

/**
 * Wraps `inner` so each tenant gets at most `perSecond` lines per second, repeats folded
 * (0 = no limit, nothing folds).
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
  readonly #dropped = new Map<string, number>();
  /**
   * Per tenant, this second's written lines (by level and message; their number is what the
   * tenant used of `perSecond`) and how often each repeated.
   */
  readonly #seen = new Map<string, Map<string, { entry: LogEntry; repeats: number }>>();
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
    let seen = this.#seen.get(tenant);
    if (!seen) this.#seen.set(tenant, seen = new Map());
    const key = `${entry.level} ${entry.msg}`;
    const earlier = seen.get(key);
    if (earlier) {
      earlier.repeats++;
      return this.#reportLater();
    }
    if (seen.size < this.perSecond) {
      seen.set(key, { entry, repeats: 0 });
      return this.inner.log(entry);
    }
    this.#dropped.set(tenant, (this.#dropped.get(tenant) ?? 0) + 1);
    this.#reportLater();
  }

  /** Reports what this second held back even if the tenant goes quiet now. */
  #reportLater() {
    this.#timer ??= setTimeout(() => this.flush(), 1000);
    Deno.unrefTimer(this.#timer);
  }

  /**
   * Ends the current second: reports what repeated and what was dropped, per tenant, and starts
   * a new one.
   */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [tenant, seen] of this.#seen) {
      for (const { entry, repeats } of seen.values()) {
        if (repeats === 0) continue;
        this.inner.log({
          level: entry.level,
          msg: `tenant "${tenant}": the line "${firstLine(entry.msg)}" repeated ${repeats} ` +
            `more time${repeats === 1 ? "" : "s"} within a second`,
          tenant,
          repeated: repeats,
        });
      }
    }
    this.#seen.clear();
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
    this.#windowStart = this.clock.now();
  }
}

/** A message's first line, cut to 120 characters: enough to find the full one above it. */
function firstLine(msg: string): string {
  const line = msg.split("\n", 1)[0];
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}
