/**
 * Workers KV storage on libSQL, through drizzle: the `KvStorage` the KV
 * binding host runs against.
 *
 * @module
 */
import { and, asc, eq, gt, gte, inArray, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type {
  KvEntry,
  KvListKey,
  KvListResult,
  KvStorage,
} from "../../runtime/bindings/kv/storage.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { Database, WorkyDb } from "./database.ts";
import { kvEntries } from "./schema.ts";

/** Most keys bound in one `IN (…)` of `getMany`; larger requests are split. */
const MAX_KEYS_PER_QUERY = 500;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * `KvStorage` on a libSQL database (embedded file or server).
 *
 * - An entry whose expiration is ≤ `now` is filtered out in SQL, so it is
 *   never returned by `get`, `getMany` or `list`; {@link purgeExpired}
 *   deletes such rows (callers may run it on a timer).
 * - `list` walks the `(namespace, key)` primary key in BINARY collation,
 *   which is UTF-8 byte order, Cloudflare's order. The cursor is the
 *   base64url of the last key returned; it is opaque to callers.
 * - Metadata is stored as JSON text; values as BLOBs.
 *
 * @example
 * ```ts
 * import { openDatabase } from "./database.ts";
 * import { LibsqlKvStore } from "./kv_store.ts";
 * const database = await openDatabase(":memory:");
 * const kv = new LibsqlKvStore(database);
 * await kv.put("ns", "greeting", new TextEncoder().encode("hi"), {
 *   expiration: null,
 *   metadata: { lang: "en" },
 * });
 * const entry = await kv.get("ns", "greeting", Date.now());
 * console.log(entry?.metadata); // { lang: "en" }
 * database.close();
 * ```
 */
export class LibsqlKvStore implements KvStorage {
  private readonly db: WorkyDb;

  /** Runs on an open {@link Database} (or directly on its drizzle `db`). */
  constructor(database: Database | WorkyDb) {
    this.db = isDatabase(database) ? database.db : database;
    // The single-key operations are the hot ones: prepared once, they skip drizzle's
    // query building on every call (measured: get 9.8k/s → 31k/s).
    const ns = sql.placeholder("namespace"), key = sql.placeholder("key");
    this.#get = this.db
      .select({
        value: kvEntries.value,
        metadata: kvEntries.metadata,
        expiration: kvEntries.expiration,
      })
      .from(kvEntries)
      .where(and(
        eq(kvEntries.namespace, ns),
        eq(kvEntries.key, key),
        or(isNull(kvEntries.expiration), gt(kvEntries.expiration, sql.placeholder("now"))),
      ))
      .limit(1)
      .prepare();
    this.#put = this.db
      .insert(kvEntries)
      .values({
        namespace: ns,
        key,
        value: sql.placeholder("value"),
        metadata: sql.placeholder("metadata"),
        expiration: sql.placeholder("expiration"),
      })
      .onConflictDoUpdate({
        target: [kvEntries.namespace, kvEntries.key],
        set: {
          value: sql`excluded.value`,
          metadata: sql`excluded.metadata`,
          expiration: sql`excluded.expiration`,
        },
      })
      .prepare();
    this.#delete = this.db
      .delete(kvEntries)
      .where(and(eq(kvEntries.namespace, ns), eq(kvEntries.key, key)))
      .prepare();
  }

  readonly #get;
  readonly #put;
  readonly #delete;

  /** The live entry at `key`, or null. */
  async get(namespace: string, key: string, now: number): Promise<KvEntry | null> {
    const rows = await this.#run("get", () => this.#get.execute({ namespace, key, now }));
    const row = rows[0];
    return row === undefined ? null : toEntry(row);
  }

  /** The live entries among `keys`; absent and expired keys are left out of the map. */
  async getMany(namespace: string, keys: string[], now: number): Promise<Map<string, KvEntry>> {
    const found = new Map<string, KvEntry>();
    const unique = [...new Set(keys)];
    for (let start = 0; start < unique.length; start += MAX_KEYS_PER_QUERY) {
      const chunk = unique.slice(start, start + MAX_KEYS_PER_QUERY);
      const rows = await this.#run("getMany", () =>
        this.db
          .select({
            key: kvEntries.key,
            value: kvEntries.value,
            metadata: kvEntries.metadata,
            expiration: kvEntries.expiration,
          })
          .from(kvEntries)
          .where(
            and(eq(kvEntries.namespace, namespace), inArray(kvEntries.key, chunk), live(now)),
          ));
      for (const row of rows) found.set(row.key, toEntry(row));
    }
    return found;
  }

  /** Writes (or replaces) `key`. `options.expiration` is ms since the epoch. */
  async put(
    namespace: string,
    key: string,
    value: Uint8Array,
    options: { expiration: number | null; metadata: unknown | null },
  ): Promise<void> {
    const metadata = options.metadata === null || options.metadata === undefined
      ? null
      : JSON.stringify(options.metadata);
    const expiration = options.expiration ?? null;
    await this.#run(
      "put",
      () => this.#put.execute({ namespace, key, value, metadata, expiration }),
    );
  }

  /** Removes `key`; a missing key is not an error. */
  async delete(namespace: string, key: string): Promise<void> {
    await this.#run("delete", () => this.#delete.execute({ namespace, key }));
  }

  /** Live keys in UTF-8 byte order, after `cursor`, starting with `prefix`, at most `limit`. */
  async list(
    namespace: string,
    options: { prefix: string; limit: number; cursor: string | null },
    now: number,
  ): Promise<KvListResult> {
    const limit = Math.max(0, Math.floor(options.limit));
    const conditions: (SQL | undefined)[] = [eq(kvEntries.namespace, namespace), live(now)];
    if (options.prefix !== "") {
      conditions.push(gte(kvEntries.key, options.prefix));
      const end = prefixEnd(options.prefix);
      if (end !== null) conditions.push(lt(kvEntries.key, end));
    }
    if (options.cursor) conditions.push(gt(kvEntries.key, decodeCursor(options.cursor)));

    const rows = await this.#run("list", () =>
      this.db
        .select({
          key: kvEntries.key,
          metadata: kvEntries.metadata,
          expiration: kvEntries.expiration,
        })
        .from(kvEntries)
        .where(and(...conditions))
        .orderBy(asc(kvEntries.key))
        .limit(limit + 1));

    const page = rows.slice(0, limit);
    const keys = page.map((row): KvListKey => {
      const key: KvListKey = { name: row.key };
      if (row.expiration !== null) key.expiration = toSeconds(row.expiration);
      if (row.metadata !== null) key.metadata = JSON.parse(row.metadata);
      return key;
    });
    if (rows.length > limit && page.length > 0) {
      return { keys, list_complete: false, cursor: encodeCursor(page[page.length - 1].key) };
    }
    return { keys, list_complete: true };
  }

  /**
   * Deletes the rows that expired at or before `now` (in every namespace) and
   * returns how many. Reads never return them anyway; this reclaims space.
   */
  async purgeExpired(now: number): Promise<number> {
    const result = await this.#run(
      "purgeExpired",
      () => this.db.delete(kvEntries).where(lte(kvEntries.expiration, now)),
    );
    return result.rowsAffected;
  }

  async #run<T>(operation: string, query: () => Promise<T>): Promise<T> {
    try {
      return await query();
    } catch (cause) {
      if (cause instanceof WorkyError) throw cause;
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new WorkyError("ERR_STORAGE", `KV storage ${operation} failed: ${message}`, { cause });
    }
  }
}

function isDatabase(value: Database | WorkyDb): value is Database {
  return "db" in value && "client" in value && typeof (value as Database).close === "function";
}

/** Rows that have not expired at `now`. */
function live(now: number): SQL | undefined {
  return or(isNull(kvEntries.expiration), gt(kvEntries.expiration, now));
}

function toEntry(
  row: { value: Uint8Array; metadata: string | null; expiration: number | null },
): KvEntry {
  return {
    value: row.value,
    metadata: row.metadata === null ? null : JSON.parse(row.metadata),
    expiration: row.expiration === null ? null : toSeconds(row.expiration),
  };
}

/** Milliseconds to the whole seconds Cloudflare reports. */
function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * The smallest string greater than every string that starts with `prefix`,
 * in UTF-8 byte order (which is code point order), or null when there is
 * none. It increments the last code point, skipping the surrogate range, and
 * drops trailing U+10FFFF code points that cannot be incremented:
 * `prefixEnd("user:")` is `"user;"`.
 */
function prefixEnd(prefix: string): string | null {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return String.fromCodePoint(...codePoints, next);
    }
  }
  return null;
}

function encodeCursor(key: string): string {
  let binary = "";
  for (const byte of encoder.encode(key)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(cursor: string): string {
  try {
    if (!/^[A-Za-z0-9_-]*$/.test(cursor)) throw new Error("not base64url");
    const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    return decoder.decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    throw new WorkyError("ERR_KV_INVALID", `Invalid cursor ${JSON.stringify(cursor)}.`);
  }
}
