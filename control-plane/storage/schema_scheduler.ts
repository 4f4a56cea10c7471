/**
 * Tables of the scheduler: the one timer table every delayed thing goes
 * through (cron ticks, queue deliveries and retries, later alarms), the
 * history of cron runs, and queue messages.
 *
 * Times are milliseconds since the epoch. Leases (`lease_owner`,
 * `lease_until`) let several Worky processes share one database: a row is
 * worked on by the process holding an unexpired lease, and taken over by
 * another once the lease runs out (the holder died).
 *
 * @module
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { bytes } from "./schema.ts";

/**
 * One pending timer per `(kind, key)`; `id` is `kind + ":" + key`.
 * `seq` grows on every (re)schedule, so a handler that finishes after someone
 * re-armed its timer does not undo that.
 *
 * @example
 * ```ts
 * import { timers } from "./schema_scheduler.ts";
 * console.log(timers.dueAt.name); // "due_at"
 * ```
 */
export const timers = sqliteTable("timers", {
  id: text("id").primaryKey(),
  kind: text("kind").notNull(),
  key: text("key").notNull(),
  dueAt: integer("due_at").notNull(),
  /** JSON text, or null. */
  payload: text("payload"),
  seq: integer("seq").notNull().default(1),
  leaseOwner: text("lease_owner"),
  leaseUntil: integer("lease_until"),
}, (t) => [index("timers_due_idx").on(t.dueAt)]);

/**
 * Every cron run: scheduled, manual (`worky cron trigger`, `/__scheduled`),
 * skipped because the previous one was still going (`overrun`) or missed
 * during downtime (`missed`). `outcome` is `running`, `ok`, `error`,
 * `overrun`, `missed` or `abandoned` (its process died mid-run).
 *
 * @example
 * ```ts
 * import { cronRuns } from "./schema_scheduler.ts";
 * console.log(cronRuns.scheduledTime.name); // "scheduled_time"
 * ```
 */
export const cronRuns = sqliteTable("cron_runs", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  tenant: text("tenant").notNull(),
  schedule: text("schedule").notNull(),
  timezone: text("timezone").notNull(),
  /** `schedule`, `catch-up`, `manual` or `dev`. */
  trigger: text("trigger").notNull(),
  scheduledTime: integer("scheduled_time").notNull(),
  startedAt: integer("started_at"),
  endedAt: integer("ended_at"),
  outcome: text("outcome").notNull(),
  error: text("error"),
  /** JSON array of `{ time, level, msg }`. */
  logs: text("logs"),
  requestId: text("request_id"),
  owner: text("owner"),
  leaseUntil: integer("lease_until"),
}, (t) => [index("cron_runs_trigger_idx").on(t.tenant, t.schedule, t.id)]);

/**
 * Queue messages. `state` is `ready` (waiting or in flight) or `dead`
 * (failed `max_retries` times; a copy went to the dead-letter queue, if any).
 * A message is in flight while `lease_until` is in the future; visible to
 * consumers once `visible_at` has passed and it holds no live lease.
 *
 * @example
 * ```ts
 * import { queueMessages } from "./schema_scheduler.ts";
 * console.log(queueMessages.visibleAt.name); // "visible_at"
 * ```
 */
export const queueMessages = sqliteTable("queue_messages", {
  id: text("id").primaryKey(),
  queue: text("queue").notNull(),
  body: bytes("body").notNull(),
  contentType: text("content_type").notNull(),
  attempts: integer("attempts").notNull().default(0),
  enqueuedAt: integer("enqueued_at").notNull(),
  visibleAt: integer("visible_at").notNull(),
  state: text("state").notNull().default("ready"),
  leaseOwner: text("lease_owner"),
  leaseUntil: integer("lease_until"),
  error: text("error"),
}, (t) => [index("queue_messages_ready_idx").on(t.queue, t.state, t.visibleAt)]);
