/**
 * Tables of Durable Objects in the control-plane database. An object's own
 * data (its key-value pairs and its SQL tables) lives in its own libSQL file
 * under the data folder; these tables hold what must be seen across objects
 * and processes:
 *
 * - `durable_object_leases`: which Worky process runs an object now. One row
 *   per live object; a process renews its rows while it holds them, and a row
 *   whose `expires_at` passed may be taken over (its holder died).
 *
 * Alarms are not here: they are `do-alarm` rows of the scheduler's `timers`
 * table (`control-plane/durable_objects/alarms.ts`).
 *
 * `object_key` is `<tenant>/<class>/<id>`. Times are milliseconds since the epoch.
 *
 * @module
 */
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
