/**
 * Tables of Durable Objects in the control-plane database. An object's own
 * data (its key-value pairs and its SQL tables) lives in its own libSQL file
 * under the data folder; these tables hold what must be seen across objects
 * and processes:
 *
 * - `durable_object_leases`: which Worky process runs an object now. One row
 *   per live object; a process renews its rows while it holds them, and a row
 *   whose `expires_at` passed may be taken over (its holder died).
 * - `durable_object_alarms`: one pending alarm per object, persisted so that a
 *   restart still fires it.
 *
 * `object_key` is `<tenant>/<class>/<id>`. Times are milliseconds since the epoch.
 *
 * @module
 */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The lease of one live Durable Object.
 *
 * @example
 * ```ts
 * import { durableObjectLeases } from "./schema_durable_objects.ts";
 * console.log(durableObjectLeases.expiresAt.name); // "expires_at"
 * ```
 */
export const durableObjectLeases = sqliteTable("durable_object_leases", {
  objectKey: text("object_key").primaryKey(),
  /** The holding process (random per process start). */
  owner: text("owner").notNull(),
  expiresAt: integer("expires_at").notNull(),
});

/**
 * The pending alarm of one Durable Object.
 *
 * @example
 * ```ts
 * import { durableObjectAlarms } from "./schema_durable_objects.ts";
 * console.log(durableObjectAlarms.dueAt.name); // "due_at"
 * ```
 */
export const durableObjectAlarms = sqliteTable("durable_object_alarms", {
  objectKey: text("object_key").primaryKey(),
  tenant: text("tenant").notNull(),
  className: text("class_name").notNull(),
  objectId: text("object_id").notNull(),
  /** When the alarm (or its next retry) is due. */
  dueAt: integer("due_at").notNull(),
  /** The time the tenant set (stays the same across retries). */
  scheduledAt: integer("scheduled_at").notNull(),
  /** Failed attempts so far. */
  retryCount: integer("retry_count").notNull().default(0),
}, (t) => [index("durable_object_alarms_due_idx").on(t.dueAt)]);
