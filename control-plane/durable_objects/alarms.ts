/**
 * Durable Object alarms on the one timer service
 * (`control-plane/scheduler/timer_service.ts`): an object's alarm is the
 * timer of kind {@link DO_ALARM_TIMER} keyed `<tenant>/<class>/<id>`, its
 * payload `{ retryCount }`. `setAlarm`/`getAlarm`/`deleteAlarm` write and
 * read that row, so alarms are persisted (a restart still fires them), fire
 * on time without polling, and fire in one process when several share the
 * database (the timer's lease).
 *
 * At least once: the timer is removed only after `alarm()` returned. When
 * `alarm()` throws, the timer moves to a retry with exponential backoff (2 s,
 * 4 s, 8 s, … up to {@link MAX_ALARM_RETRIES} retries; `retryCount` in the
 * payload), then is dropped (logged). If the object set or deleted its alarm
 * while `alarm()` ran, that wins over the retry and over the removal. An
 * object live in another process (`ERR_CONFLICT`), or a class no deployment
 * serves now (`ERR_UNAVAILABLE`), leaves the alarm due again
 * {@link ALARM_DEFER_MS} later.
 *
 * The handler is `detached`: a long `alarm()` does not hold back other timers.
 *
 * @module
 */
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { type ObjectAddress, objectKey } from "../../runtime/durable_objects/backend.ts";
import type { ObjectResult } from "../../runtime/bindings/durable_object/types.ts";
import type { Timer, TimerService, TimerUpdate } from "../scheduler/timer_service.ts";

/** The timer kind of Durable Object alarms. */
export const DO_ALARM_TIMER = "do-alarm";
/** Retries after the first failed attempt. */
export const MAX_ALARM_RETRIES = 6;
/** First retry delay; doubles on every retry. */
const ALARM_RETRY_BASE_MS = 2_000;
/** How much later an alarm is tried again when its object is not ours to run now. */
export const ALARM_DEFER_MS = 1_000;

/** What alarms did during one {@linkcode DurableObjectAlarms.runDue}. */
export interface AlarmRunReport {
  /** `alarm()` returned. */
  fired: number;
  /** `alarm()` threw (retried or dropped). */
  failed: number;
  /** Failed for the last time and removed. */
  dropped: number;
}

/** Fires one object's alarm (the directory's `fireAlarm`). */
export interface AlarmTarget {
  fireAlarm(address: ObjectAddress, retryCount: number): Promise<ObjectResult>;
}

/**
 * The address of an alarm timer's key `<tenant>/<class>/<id>` (class names
 * and ids never contain `/`).
 *
 * @example
 * ```ts
 * import { alarmAddress } from "./alarms.ts";
 * console.log(alarmAddress("shop/Counter/ab12")); // { tenant: "shop", className: "Counter", id: "ab12" }
 * ```
 */
export function alarmAddress(key: string): ObjectAddress {
  const idAt = key.lastIndexOf("/");
  const classAt = key.lastIndexOf("/", idAt - 1);
  if (classAt <= 0) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `alarm timer key ${JSON.stringify(key)} is not <tenant>/<class>/<id>`,
    );
  }
  return {
    tenant: key.slice(0, classAt),
    className: key.slice(classAt + 1, idAt),
    id: key.slice(idAt + 1),
  };
}

/**
 * Alarms of every Durable Object of this process, on the shared timer service.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { ManualClock } from "../../runtime/clock.ts";
 * import { TimerService } from "../scheduler/timer_service.ts";
 * import { DurableObjectAlarms } from "./alarms.ts";
 * const database = await openDatabase(":memory:");
 * const clock = new ManualClock(0);
 * const timers = new TimerService({ client: database.client, clock });
 * const alarms = new DurableObjectAlarms({ timers });
 * alarms.listen({ fireAlarm: async (address, retryCount) => [true, undefined] });
 * const address = { tenant: "t", className: "Counter", id: "a".repeat(64) };
 * await alarms.set(address, 60_000);
 * console.log(await alarms.get(address)); // 60000
 * clock.advance(60_000);
 * console.log(await alarms.runDue()); // { fired: 1, failed: 0, dropped: 0 }
 * await timers.close();
 * database.close();
 * ```
 */
export class DurableObjectAlarms {
  readonly timers: TimerService;
  readonly #clock: Clock;
  readonly #logger?: Logger;
  /** Object key → whether the object set its alarm since its running `alarm()` started. */
  readonly #firing = new Map<string, { reset: boolean }>();
  readonly #totals: AlarmRunReport = { fired: 0, failed: 0, dropped: 0 };

  constructor(options: { timers: TimerService; logger?: Logger }) {
    this.timers = options.timers;
    this.#clock = options.timers.clock;
    this.#logger = options.logger;
  }

  /** Registers the `do-alarm` handler: due alarms fire through `target`. */
  listen(target: AlarmTarget): void {
    this.timers.on(DO_ALARM_TIMER, (t) => this.#fire(t, target), { detached: true });
  }

  /**
   * The object's alarm time (its next retry while retrying), or null. Null
   * while its `alarm()` runs, unless it set a new alarm since (as Cloudflare).
   */
  async get(address: ObjectAddress): Promise<number | null> {
    const key = objectKey(address);
    const firing = this.#firing.get(key);
    if (firing && !firing.reset) return null;
    return (await this.timers.get(DO_ALARM_TIMER, key))?.dueAt ?? null;
  }

  /** Sets (replaces) the object's alarm; a retry in progress is forgotten. */
  async set(address: ObjectAddress, time: number): Promise<void> {
    const key = objectKey(address);
    await this.timers.schedule(DO_ALARM_TIMER, key, time, { retryCount: 0 });
    const firing = this.#firing.get(key);
    if (firing) firing.reset = true;
  }

  /** Deletes the object's alarm (and its pending retries). */
  async delete(address: ObjectAddress): Promise<void> {
    const key = objectKey(address);
    await this.timers.cancel(DO_ALARM_TIMER, key);
    const firing = this.#firing.get(key);
    if (firing) firing.reset = false;
  }

  /**
   * Fires what is due now on the timer service (every kind) and waits for the
   * alarms it started; reports what alarms did meanwhile. For tests and tools.
   */
  async runDue(): Promise<AlarmRunReport> {
    const before = { ...this.#totals };
    await this.timers.runDue();
    await this.timers.idle();
    return {
      fired: this.#totals.fired - before.fired,
      failed: this.#totals.failed - before.failed,
      dropped: this.#totals.dropped - before.dropped,
    };
  }

  async #fire(timer: Timer, target: AlarmTarget): Promise<TimerUpdate | null> {
    const address = alarmAddress(timer.key);
    const retryCount = retryCountOf(timer.payload);
    const state = { reset: false };
    this.#firing.set(timer.key, state);
    let failure: string;
    try {
      const result = await target.fireAlarm(address, retryCount);
      if (result[0]) {
        this.#totals.fired++;
        return null;
      }
      failure = `${result[1].name}: ${result[1].message}`;
    } catch (err) {
      const e = WorkyError.from(err);
      if (e.code === "ERR_CONFLICT" || e.code === "ERR_UNAVAILABLE") {
        // not ours to run now: due again a little later, wherever it is live
        return { dueAt: this.#clock.now() + ALARM_DEFER_MS, payload: timer.payload };
      }
      failure = e.message;
    } finally {
      if (this.#firing.get(timer.key) === state) this.#firing.delete(timer.key);
    }
    this.#totals.failed++;
    const where = `${address.className} ${address.id} (tenant "${address.tenant}")`;
    if (retryCount >= MAX_ALARM_RETRIES) {
      this.#totals.dropped++;
      this.#logger?.log({
        level: "error",
        msg: `alarm of Durable Object ${where} failed ${retryCount + 1} times; dropped: ${failure}`,
        tenant: address.tenant,
      });
      return null;
    }
    const delay = ALARM_RETRY_BASE_MS * 2 ** retryCount;
    this.#logger?.log({
      level: "warn",
      msg: `alarm of Durable Object ${where} threw (${failure}); retry ${
        retryCount + 1
      } in ${delay} ms`,
      tenant: address.tenant,
    });
    return { dueAt: this.#clock.now() + delay, payload: { retryCount: retryCount + 1 } };
  }
}

function retryCountOf(payload: unknown): number {
  const n = (payload as { retryCount?: unknown } | null)?.retryCount;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : 0;
}
