/**
 * Cron triggers on top of the timer service. Each trigger of each tenant is
 * one timer (kind `"cron"`, key `tenant|timezone|schedule`) whose due time is
 * the trigger's next run, persisted in the database. Firing it:
 *
 * 1. computes the next run with croner (after "now", in the trigger's zone),
 *    which becomes the timer's new due time: ticks missed while the timer was
 *    late are not replayed one by one;
 * 2. if the tick is more than `missedAfterMs` late (Worky was down), applies
 *    the trigger's `catch_up` policy: `skip` records a `missed` run, `once`
 *    runs it now (trigger `catch-up`);
 * 3. otherwise starts a run, unless the trigger's previous run is still going
 *    (in any process): then an `overrun` run is recorded and nothing starts.
 *
 * A run calls the tenant's `scheduled(controller, env, ctx)` and is recorded
 * in `cron_runs` with its scheduled time, start, end, outcome, error and the
 * log lines it produced. Manual runs (`worky cron trigger`, dev's
 * `/__scheduled`) go through the same path.
 *
 * @module
 */
import type { Client } from "@libsql/client";
import type { Cron } from "croner";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { Deployment } from "../../runtime/deployment.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { ScheduledPayload } from "../../runtime/events/scheduled.worker.ts";
import type { TenantConfig } from "../config/types.ts";
import { cronOf, type CronTriggerConfig } from "./cron_config.ts";
import { type CronRun, cronRunByRequestId } from "./cron_runs.ts";
import type { RunLogCapture } from "./run_log_capture.ts";
import type { TimerService } from "./timer_service.ts";

/** Timer kind of scheduled ticks. */
export const CRON_TIMER = "cron";
/** Timer kind of one-off manual runs (`worky cron trigger`). */
export const CRON_TRIGGER_TIMER = "cron-trigger";

/** Options of {@linkcode CronScheduler}. */
export interface CronSchedulerOptions {
  client: Client;
  timers: TimerService;
  clock: Clock;
  logger: Logger;
  capture: RunLogCapture;
  /** A tick this late counts as missed (Worky was down), ms (default 10 000). */
  missedAfterMs?: number;
  /** Added to the tenant's `timeout_ms` for a run's overrun lease, ms (default 5000). */
  leaseMarginMs?: number;
}

/** Payload of a `cron-trigger` timer. */
export interface ManualTriggerPayload {
  tenant: string;
  schedule?: string;
  requestId: string;
}

interface Trigger {
  tenant: string;
  config: CronTriggerConfig;
  cron: Cron;
  timeoutMs: number;
}

/** The timer key of a trigger. */
export function cronKey(
  tenant: string,
  t: Pick<CronTriggerConfig, "schedule" | "timezone">,
): string {
  return `${tenant}|${t.timezone}|${t.schedule}`;
}

/**
 * The cron scheduler of one process.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { ManualClock } from "../../runtime/clock.ts";
 * import { MemoryLogger } from "../../runtime/logger.ts";
 * import { TimerService } from "./timer_service.ts";
 * import { RunLogCapture } from "./run_log_capture.ts";
 * import { CronScheduler } from "./cron_scheduler.ts";
 * const database = await openDatabase(":memory:");
 * const clock = new ManualClock(Date.UTC(2026, 0, 1));
 * const timers = new TimerService({ client: database.client, clock });
 * const logger = new MemoryLogger();
 * const cron = new CronScheduler({
 *   client: database.client, timers, clock, logger, capture: new RunLogCapture(logger),
 * });
 * await cron.configure([], () => undefined);
 * database.close();
 * ```
 */
export class CronScheduler {
  readonly #client: Client;
  readonly #timers: TimerService;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #capture: RunLogCapture;
  readonly #missedAfterMs: number;
  readonly #leaseMarginMs: number;
  #triggers = new Map<string, Trigger>();
  #tenants = new Map<string, TenantConfig>();
  #lookup: (tenant: string) => Pick<Deployment, "event"> | undefined = () => undefined;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: CronSchedulerOptions) {
    this.#client = options.client;
    this.#timers = options.timers;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#capture = options.capture;
    this.#missedAfterMs = options.missedAfterMs ?? 10_000;
    this.#leaseMarginMs = options.leaseMarginMs ?? 5_000;
    this.#timers.on(CRON_TIMER, (t) => this.#fire(t.key, t.dueAt), {
      accepts: (key) => this.#triggers.has(key),
    });
    this.#timers.on(
      CRON_TRIGGER_TIMER,
      (t) => this.#fireManual(t.payload as ManualTriggerPayload),
      {
        accepts: (key) => this.#tenants.has(key.slice(0, key.indexOf("|"))),
      },
    );
  }

  /**
   * Takes the triggers of `tenants`: creates the timer of each new trigger
   * (due at its next run after now), keeps the persisted next run of known
   * ones (so downtime is noticed), and deletes timers of triggers these
   * tenants no longer have.
   */
  async configure(
    tenants: TenantConfig[],
    lookup: (tenant: string) => Pick<Deployment, "event"> | undefined,
  ): Promise<void> {
    this.#lookup = lookup;
    this.#tenants = new Map(tenants.map((t) => [t.name, t]));
    const triggers = new Map<string, Trigger>();
    for (const t of tenants) {
      for (const config of t.cron ?? []) {
        triggers.set(cronKey(t.name, config), {
          tenant: t.name,
          config,
          cron: cronOf(config),
          timeoutMs: t.limits.timeoutMs,
        });
      }
    }
    this.#triggers = triggers;
    const now = this.#clock.now();
    for (const [key, t] of triggers) {
      const next = t.cron.nextRun(new Date(now));
      if (next) {
        await this.#timers.schedule(CRON_TIMER, key, next.getTime(), null, { ifAbsent: true });
      }
    }
    for (const row of await this.#timers.list(CRON_TIMER)) {
      const tenant = row.key.slice(0, row.key.indexOf("|"));
      if (this.#tenants.has(tenant) && !triggers.has(row.key)) {
        await this.#timers.cancel(CRON_TIMER, row.key);
      }
    }
  }

  /** The triggers this process knows, with their persisted next run. */
  async list(): Promise<{ tenant: string; trigger: CronTriggerConfig; nextRun: number | null }[]> {
    const out = [];
    for (const [key, t] of this.#triggers) {
      const timer = await this.#timers.get(CRON_TIMER, key);
      out.push({ tenant: t.tenant, trigger: t.config, nextRun: timer?.dueAt ?? null });
    }
    return out;
  }

  /**
   * Runs a tenant's `scheduled()` now (trigger `manual` or `dev`) and resolves
   * with the recorded run. `schedule` picks the trigger (default: the
   * tenant's first; a tenant without triggers runs with `"* * * * *"`).
   */
  async runNow(
    tenant: string,
    schedule?: string,
    trigger: "manual" | "dev" = "manual",
    requestId: string = `cron-${crypto.randomUUID()}`,
  ): Promise<CronRun> {
    const t = this.#resolve(tenant, schedule);
    const { done } = await this.#start(t, this.#clock.now(), trigger, requestId);
    await done;
    const run = await cronRunByRequestId(this.#client, requestId);
    if (!run) throw new WorkyError("ERR_INTERNAL", `cron run ${requestId} was not recorded`);
    return run;
  }

  /** Resolves when every run started so far has ended. */
  async idle(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  #resolve(tenant: string, schedule?: string): Trigger {
    const config = this.#tenants.get(tenant);
    if (!config) {
      throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${tenant}" in this server`);
    }
    const list = [...this.#triggers.values()].filter((t) => t.tenant === tenant);
    if (schedule !== undefined) {
      const found = list.find((t) => t.config.schedule === schedule);
      if (found) return found;
      if (list.length) {
        throw new WorkyError(
          "ERR_NOT_FOUND",
          `tenant "${tenant}" has no cron trigger ${JSON.stringify(schedule)} (it has ${
            list.map((t) => JSON.stringify(t.config.schedule)).join(", ")
          })`,
        );
      }
    }
    if (list.length) return list[0];
    const config2: CronTriggerConfig = {
      schedule: schedule ?? "* * * * *",
      timezone: "UTC",
      catchUp: "skip",
    };
    return { tenant, config: config2, cron: cronOf(config2), timeoutMs: config.limits.timeoutMs };
  }

  async #fire(key: string, dueAt: number): Promise<number | null> {
    const t = this.#triggers.get(key)!;
    const now = this.#clock.now();
    const next = t.cron.nextRun(new Date(now))?.getTime() ?? null;
    if (now - dueAt > this.#missedAfterMs) {
      if (t.config.catchUp === "once") {
        await this.#start(t, dueAt, "catch-up", `cron-${crypto.randomUUID()}`);
      } else {
        await this.#record(t, dueAt, "schedule", "missed", null, null);
      }
    } else {
      await this.#start(t, dueAt, "schedule", `cron-${crypto.randomUUID()}`);
    }
    return next;
  }

  async #fireManual(p: ManualTriggerPayload): Promise<null> {
    try {
      const t = this.#resolve(p.tenant, p.schedule);
      await this.#start(t, this.#clock.now(), "manual", p.requestId);
    } catch (err) {
      const config = { schedule: p.schedule ?? "", timezone: "UTC" };
      await this.#record(
        { tenant: p.tenant, config } as Trigger,
        this.#clock.now(),
        "manual",
        "error",
        (err as Error).message,
        p.requestId,
      );
    }
    return null;
  }

  /**
   * Records a run as started (unless the trigger's previous run still holds
   * its lease: then records an overrun) and runs it in the background.
   * Resolves, once recorded, with `done`: a promise of the run's end.
   */
  async #start(
    t: Trigger,
    scheduledTime: number,
    trigger: string,
    requestId: string,
  ): Promise<{ done: Promise<void> }> {
    const now = this.#clock.now();
    const { tenant } = t;
    const { schedule, timezone } = t.config;
    const owner = this.#timers.owner;
    const [, inserted] = await this.#client.batch([
      {
        sql: "UPDATE cron_runs SET outcome = 'abandoned', ended_at = ? WHERE tenant = ? AND " +
          "schedule = ? AND timezone = ? AND outcome = 'running' AND lease_until <= ?",
        args: [now, tenant, schedule, timezone, now],
      },
      {
        sql: "INSERT INTO cron_runs (tenant, schedule, timezone, trigger, scheduled_time, " +
          "started_at, outcome, request_id, owner, lease_until) " +
          "SELECT ?, ?, ?, ?, ?, ?, 'running', ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM cron_runs " +
          "WHERE tenant = ? AND schedule = ? AND timezone = ? AND outcome = 'running') RETURNING id",
        args: [
          tenant,
          schedule,
          timezone,
          trigger,
          scheduledTime,
          now,
          requestId,
          owner,
          now + t.timeoutMs + this.#leaseMarginMs,
          tenant,
          schedule,
          timezone,
        ],
      },
    ], "write");
    if (!inserted.rows.length) {
      await this.#record(
        t,
        scheduledTime,
        trigger,
        "overrun",
        "the previous run was still going",
        requestId,
      );
      this.#logger.log({
        level: "warn",
        msg: `cron ${JSON.stringify(schedule)}: run of ${new Date(scheduledTime).toISOString()} ` +
          "skipped: the previous run is still going",
        tenant,
        requestId,
      });
      return { done: Promise.resolve() };
    }
    const id = Number(inserted.rows[0].id);
    this.#capture.watch(requestId);
    const done = this.#run(t, id, scheduledTime, requestId);
    this.#inFlight.add(done);
    done.finally(() => this.#inFlight.delete(done));
    return { done };
  }

  async #run(t: Trigger, id: number, scheduledTime: number, requestId: string): Promise<void> {
    let outcome = "ok";
    let error: string | null = null;
    try {
      const deployment = this.#lookup(t.tenant);
      if (!deployment) {
        throw new WorkyError("ERR_NOT_FOUND", `tenant "${t.tenant}" is not deployed`);
      }
      const payload: ScheduledPayload = { cron: t.config.schedule, scheduledTime };
      await deployment.event("scheduled", payload, requestId);
    } catch (err) {
      outcome = "error";
      error = (err as Error)?.message ?? String(err);
    }
    const logs = this.#capture.take(requestId);
    try {
      await this.#client.execute({
        sql:
          "UPDATE cron_runs SET ended_at = ?, outcome = ?, error = ?, logs = ?, lease_until = NULL " +
          "WHERE id = ?",
        args: [this.#clock.now(), outcome, error, JSON.stringify(logs), id],
      });
    } catch (err) {
      this.#logger.log({
        level: "error",
        msg: `cron run ${id} could not be recorded: ${(err as Error)?.message ?? err}`,
        tenant: t.tenant,
        requestId,
      });
    }
  }

  async #record(
    t: Trigger,
    scheduledTime: number,
    trigger: string,
    outcome: string,
    error: string | null,
    requestId: string | null,
  ): Promise<void> {
    const now = this.#clock.now();
    await this.#client.execute({
      sql: "INSERT INTO cron_runs (tenant, schedule, timezone, trigger, scheduled_time, " +
        "started_at, ended_at, outcome, error, logs, request_id, owner) " +
        "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, '[]', ?, ?)",
      args: [
        t.tenant,
        t.config.schedule,
        t.config.timezone,
        trigger,
        scheduledTime,
        now,
        outcome,
        error,
        requestId,
        this.#timers.owner,
      ],
    });
  }
}
