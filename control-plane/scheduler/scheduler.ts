/**
 * The scheduler of one Worky process: the timer service and what runs on it
 * (cron triggers, queue deliveries), wired together. Durable Object alarms
 * run on the same timer service (kind `do-alarm`, registered by
 * `control-plane/durable_objects/alarms.ts`). `server.ts` creates it
 * before the runtime (its log capture wraps the runtime's logger, and the
 * queue backend is a binding service), starts it after the deployments, and
 * closes it before they drain.
 *
 * @module
 */
import type { Client } from "@libsql/client";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { Deployment } from "../../runtime/deployment.ts";
import type { TenantConfig } from "../config/types.ts";
import { TimerService } from "./timer_service.ts";
import { CronScheduler } from "./cron_scheduler.ts";
import { RunLogCapture } from "./run_log_capture.ts";
import { QueueService } from "../queues/queue_service.ts";

/** Tuning of the scheduler (defaults suit production; tests shorten leases). */
export interface SchedulerOptions {
  /** This process's name in leases; default random. */
  owner?: string;
  /** Lease on a firing timer, ms (default 30 000). */
  leaseMs?: number;
  /** How often timers scheduled by other processes are looked for, ms (default 1000). */
  refreshMs?: number;
  /** A cron tick this late counts as missed during downtime, ms (default 10 000). */
  missedAfterMs?: number;
  /** Added to a tenant's `timeout_ms` for cron-run and queue-message leases, ms (default 5000). */
  leaseMarginMs?: number;
}

/** What {@linkcode Scheduler} needs. */
export interface SchedulerDeps extends SchedulerOptions {
  client: Client;
  clock: Clock;
  /** The logger to wrap; the runtime gets {@linkcode Scheduler.logger}. */
  logger: Logger;
}

/**
 * Timer service + cron + queues of one process.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { systemClock } from "../../runtime/clock.ts";
 * import { MemoryLogger } from "../../runtime/logger.ts";
 * import { Scheduler } from "./scheduler.ts";
 * const database = await openDatabase(":memory:");
 * const scheduler = new Scheduler({ client: database.client, clock: systemClock, logger: new MemoryLogger() });
 * await scheduler.start([], () => undefined);
 * await scheduler.close();
 * database.close();
 * ```
 */
export class Scheduler {
  readonly timers: TimerService;
  readonly cron: CronScheduler;
  readonly queues: QueueService;
  /** The runtime's logger: passes everything on, keeps the lines of cron runs. */
  readonly logger: RunLogCapture;
  #closing: Promise<void> | undefined;

  constructor(deps: SchedulerDeps) {
    this.logger = new RunLogCapture(deps.logger, () => deps.clock.now());
    this.timers = new TimerService({
      client: deps.client,
      clock: deps.clock,
      owner: deps.owner,
      leaseMs: deps.leaseMs,
      refreshMs: deps.refreshMs,
      logger: deps.logger,
    });
    this.cron = new CronScheduler({
      client: deps.client,
      timers: this.timers,
      clock: deps.clock,
      logger: deps.logger,
      capture: this.logger,
      missedAfterMs: deps.missedAfterMs,
      leaseMarginMs: deps.leaseMarginMs,
    });
    this.queues = new QueueService({
      client: deps.client,
      timers: this.timers,
      clock: deps.clock,
      logger: deps.logger,
      leaseMarginMs: deps.leaseMarginMs,
    });
  }

  /** Takes the tenants' triggers and consumers, then fires timers on time. */
  async start(
    tenants: TenantConfig[],
    lookup: (tenant: string) => Pick<Deployment, "event"> | undefined,
  ): Promise<void> {
    await this.cron.configure(tenants, lookup);
    await this.queues.configure(tenants, lookup);
    this.timers.start();
  }

  /** Fires what is due now and waits for the runs and deliveries it started. */
  async runDue(): Promise<number> {
    const n = await this.timers.runDue();
    await this.idle();
    return n;
  }

  /** Resolves when no cron run, queue delivery or detached timer handler (DO alarm) is going. */
  async idle(): Promise<void> {
    await Promise.all([this.cron.idle(), this.queues.idle(), this.timers.idle()]);
  }

  /** Stops firing and waits for what is running (call before deployments drain). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.timers.close();
      await this.idle();
    })();
    return this.#closing;
  }
}
