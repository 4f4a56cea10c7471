/**
 * Fires Durable Object alarms. Due times are rows of `durable_object_alarms`
 * (persisted: a restart still fires them); `runDue()` fires every alarm due
 * by the injected clock, and `start()` calls it on a real-time tick.
 *
 * At least once: a row is removed only after `alarm()` returned. When
 * `alarm()` throws, it is retried with exponential backoff: 2 s, 4 s, 8 s, …
 * up to {@link MAX_ALARM_RETRIES} retries, then dropped (logged). An object
 * live in another process (`ERR_CONFLICT`) is left to that process.
 *
 * This is a minimal scheduler of its own, pending the shared timer service
 * (`control-plane/scheduler/timer_service.ts`); moving onto it means
 * replacing `runDue` by a timer kind `do-alarm`.
 *
 * @module
 */
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { DurableObjectDirectory } from "../../runtime/durable_objects/directory.ts";
import { type DueAlarm, objectKey } from "../../runtime/durable_objects/backend.ts";
import type { LibsqlObjectBackend } from "./libsql_backend.ts";

/** Retries after the first failed attempt. */
export const MAX_ALARM_RETRIES = 6;
/** First retry delay; doubles on every retry. */
export const ALARM_RETRY_BASE_MS = 2_000;

/** What one `runDue()` did. */
export interface AlarmRunReport {
  fired: number;
  failed: number;
  dropped: number;
}

/**
 * The alarm scheduler.
 *
 * @example
 * ```ts ignore
 * const scheduler = new AlarmScheduler({ backend, directory, clock });
 * clock.advance(60_000);
 * console.log(await scheduler.runDue()); // { fired: 1, failed: 0, dropped: 0 }
 * ```
 */
export class AlarmScheduler {
  readonly #backend: LibsqlObjectBackend;
  readonly #directory: DurableObjectDirectory;
  readonly #clock: Clock;
  readonly #logger?: Logger;
  readonly #running = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #tick: Promise<unknown> | undefined;

  constructor(options: {
    backend: LibsqlObjectBackend;
    directory: DurableObjectDirectory;
    clock: Clock;
    logger?: Logger;
  }) {
    this.#backend = options.backend;
    this.#directory = options.directory;
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  /** Fires every alarm due now (alarms already firing are skipped). */
  async runDue(): Promise<AlarmRunReport> {
    const report: AlarmRunReport = { fired: 0, failed: 0, dropped: 0 };
    const due = await this.#backend.dueAlarms(this.#clock.now());
    await Promise.all(due.map(async (alarm) => {
      const key = objectKey(alarm);
      if (this.#running.has(key)) return;
      this.#running.add(key);
      try {
        await this.#fire(alarm, report);
      } finally {
        this.#running.delete(key);
      }
    }));
    return report;
  }

  async #fire(alarm: DueAlarm, report: AlarmRunReport) {
    let failure: string;
    try {
      const result = await this.#directory.fireAlarm(alarm, alarm.retryCount);
      if (result[0]) {
        await this.#backend.completeAlarm(alarm);
        report.fired++;
        return;
      }
      failure = `${result[1].name}: ${result[1].message}`;
    } catch (err) {
      const e = WorkyError.from(err);
      if (e.code === "ERR_CONFLICT" || e.code === "ERR_UNAVAILABLE") return; // not ours to fire
      failure = e.message;
    }
    report.failed++;
    const where = `${alarm.className} ${alarm.id} (tenant "${alarm.tenant}")`;
    if (alarm.retryCount >= MAX_ALARM_RETRIES) {
      report.dropped++;
      await this.#backend.completeAlarm(alarm);
      this.#logger?.log({
        level: "error",
        msg: `alarm of Durable Object ${where} failed ${
          alarm.retryCount + 1
        } times; dropped: ${failure}`,
        tenant: alarm.tenant,
      });
      return;
    }
    const delay = ALARM_RETRY_BASE_MS * 2 ** alarm.retryCount;
    await this.#backend.retryAlarm(alarm, this.#clock.now() + delay);
    this.#logger?.log({
      level: "warn",
      msg: `alarm of Durable Object ${where} threw (${failure}); retry ${
        alarm.retryCount + 1
      } in ${delay} ms`,
      tenant: alarm.tenant,
    });
  }

  /** Calls `runDue()` every `intervalMs` of real time. */
  start(intervalMs = 500): void {
    if (this.#timer !== undefined) return;
    const timer = this.#timer = setInterval(() => {
      if (this.#tick) return;
      this.#tick = this.runDue().catch((err) =>
        this.#logger?.log({ level: "error", msg: `alarm scheduler: ${err?.stack ?? err}` })
      ).finally(() => this.#tick = undefined);
    }, intervalMs);
    Deno.unrefTimer(timer);
  }

  /** Stops the tick and waits for the alarms firing now. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#tick;
  }
}
