/**
 * The database schema of Worky, one file for every table (drizzle, sqlite-core).
 *
 * Migrations are generated from this file by drizzle-kit into `./migrations/`
 * (`drizzle.config.ts` at the repository root) and applied by `openDatabase`.
 * To add a table: declare it here, run
 * `node node_modules/drizzle-kit/bin.cjs generate`, commit the new SQL file.
 *
 * @module
 */
import { sql } from "drizzle-orm";
import { customType, index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * A BLOB column read and written as a plain `Uint8Array` (drizzle's own `blob`
 * mode "buffer" hands back Node `Buffer`s).
 *
 * @example
 * ```ts
 * import { sqliteTable } from "drizzle-orm/sqlite-core";
 * import { bytes } from "./schema.ts";
 * const files = sqliteTable("files", { body: bytes("body").notNull() });
 * ```
 */
export const bytes = customType<{ data: Uint8Array; driverData: ArrayBuffer | Uint8Array }>({
  dataType() {
    return "blob";
  },
  toDriver(value: Uint8Array): Uint8Array {
    return value;
  },
  fromDriver(value: ArrayBuffer | Uint8Array): Uint8Array {
    // drizzle's libSQL session hands over Node Buffers: view the same memory
    // as a plain Uint8Array (no copy).
    return value instanceof Uint8Array
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8Array(value);
  },
});

/**
 * Workers KV entries, one row per key of each namespace.
 *
 * - `key` is TEXT with SQLite's default BINARY collation, so `ORDER BY key`
 *   is UTF-8 byte order, which is Cloudflare's list order.
 * - The primary key `(namespace, key)` is the listing index: a list is one
 *   range scan of it (`namespace = ? AND key >= ? AND key < ? ORDER BY key`).
 * - `expiration` is milliseconds since the epoch (null: never expires); the
 *   partial index serves sweeps of expired rows.
 */
export const kvEntries = sqliteTable(
  "kv_entries",
  {
    namespace: text("namespace").notNull(),
    key: text("key").notNull(),
    value: bytes("value").notNull(),
    /** JSON text of the metadata, null when none was given. */
    metadata: text("metadata"),
    /** Milliseconds since the epoch; null when the entry never expires. */
    expiration: integer("expiration"),
  },
  (table) => [
    primaryKey({ columns: [table.namespace, table.key] }),
    index("kv_entries_expiration_idx").on(table.expiration).where(
      sql`${table.expiration} IS NOT NULL`,
    ),
  ],
);
