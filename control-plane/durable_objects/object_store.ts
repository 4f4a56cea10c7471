/**
 * One Durable Object's storage: its own libSQL file
 * (`<dataDir>/do/<tenant>/<class>/<id>.db`), holding its key-value pairs in
 * `_cf_KV` (the table name Cloudflare uses) and whatever tables the object
 * creates with `sql.exec()`. WAL + `synchronous=NORMAL`: a write is durable
 * against `kill -9` once it resolves. Operations run in call order.
 *
 * @module
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { type Client, createClient, type InArgs } from "@libsql/client";
import { WorkyError } from "../../runtime/errors.ts";
import { databaseFileUrl } from "../storage/database.ts";
import type { ObjectStore } from "../../runtime/durable_objects/backend.ts";
import type {
  WireListOptions,
  WireSqlResult,
  WireWrite,
} from "../../runtime/bindings/durable_object/types.ts";

const KV_TABLE = "_cf_KV";
const RESERVED = /_cf_/i;

function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(value as ArrayBuffer);
}

/**
 * Opens an object's file and prepares its key-value table.
 *
 * @example
 * ```ts
 * import { LibsqlObjectStore } from "./object_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await LibsqlObjectStore.open(`${dir}/obj.db`);
 * await store.write([["n", new Uint8Array([1])]]);
 * console.log(await store.get(["n"])); // [ Uint8Array(1) [ 1 ] ]
 * await store.close();
 * ```
 */
export class LibsqlObjectStore implements ObjectStore {
  #client: Client;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(client: Client, readonly path: string) {
    this.#client = client;
  }

  static async open(path: string): Promise<LibsqlObjectStore> {
    try {
      await mkdir(dirname(path), { recursive: true });
      const client = createClient({ url: databaseFileUrl(path), concurrency: 1, timeout: 5000 });
      await client.execute("PRAGMA journal_mode=WAL");
      await client.execute("PRAGMA synchronous=NORMAL");
      await client.execute(
        `CREATE TABLE IF NOT EXISTS ${KV_TABLE} (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`,
      );
      return new LibsqlObjectStore(client, path);
    } catch (cause) {
      throw new WorkyError(
        "ERR_STORAGE",
        `Durable Object storage ${path}: cannot open: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  /** Runs `fn` after every earlier operation. */
  #run<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const next = this.#tail.then(() => {
      if (this.#closed) {
        throw new WorkyError("ERR_UNAVAILABLE", `Durable Object storage ${this.path} is closed`);
      }
      return fn(this.#client);
    });
    this.#tail = next.catch(() => {});
    return next;
  }

  get(keys: string[]): Promise<(Uint8Array | null)[]> {
    return this.#run(async (c) => {
      if (keys.length === 0) return [];
      const rs = await c.execute({
        sql: `SELECT key, value FROM ${KV_TABLE} WHERE key IN (${keys.map(() => "?").join(",")})`,
        args: keys,
      });
      const found = new Map<string, Uint8Array>();
      for (const row of rs.rows) found.set(row[0] as string, bytesOf(row[1]));
      return keys.map((k) => found.get(k) ?? null);
    });
  }

  write(writes: WireWrite[]): Promise<void> {
    return this.#run(async (c) => {
      if (writes.length === 0) return;
      const stmts = writes.map(([key, value]) =>
        value === null ? { sql: `DELETE FROM ${KV_TABLE} WHERE key = ?`, args: [key] } : {
          sql: `INSERT INTO ${KV_TABLE} (key, value) VALUES (?, ?) ` +
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          args: [key, value],
        }
      );
      if (stmts.length === 1) await c.execute(stmts[0]);
      else await c.batch(stmts, "write");
    });
  }

  delete(keys: string[]): Promise<number> {
    return this.#run(async (c) => {
      if (keys.length === 0) return 0;
      const rs = await c.execute({
        sql: `DELETE FROM ${KV_TABLE} WHERE key IN (${keys.map(() => "?").join(",")})`,
        args: keys,
      });
      return rs.rowsAffected;
    });
  }

  list(o: WireListOptions): Promise<[string, Uint8Array][]> {
    return this.#run(async (c) => {
      const where: string[] = [];
      const args: InArgs = [];
      if (o.start !== undefined) where.push("key >= ?"), args.push(o.start);
      if (o.startAfter !== undefined) where.push("key > ?"), args.push(o.startAfter);
      if (o.end !== undefined) where.push("key < ?"), args.push(o.end);
      if (o.prefix !== undefined && o.prefix !== "") {
        where.push("key >= ? AND substr(key, 1, length(?)) = ?");
        args.push(o.prefix, o.prefix, o.prefix);
      }
      let sql = `SELECT key, value FROM ${KV_TABLE}`;
      if (where.length) sql += ` WHERE ${where.join(" AND ")}`;
      sql += ` ORDER BY key ${o.reverse ? "DESC" : "ASC"}`;
      if (o.limit !== undefined) sql += ` LIMIT ${Math.floor(Number(o.limit))}`;
      const rs = await c.execute({ sql, args });
      return rs.rows.map((row) => [row[0] as string, bytesOf(row[1])] as [string, Uint8Array]);
    });
  }

  deleteAll(): Promise<void> {
    return this.#run(async (c) => {
      await c.execute(`DELETE FROM ${KV_TABLE}`);
    });
  }

  sql(query: string, bindings: unknown[]): Promise<WireSqlResult> {
    return this.#run(async (c) => {
      if (RESERVED.test(query)) {
        return {
          ok: false,
          message:
            `sql.exec(): access to ${KV_TABLE} and other tables prefixed with _cf_ is not allowed`,
        };
      }
      try {
        const args = bindings.map((b) =>
          b instanceof ArrayBuffer ? new Uint8Array(b) : b
        ) as InArgs;
        const rs = await c.execute({ sql: query, args });
        const width = rs.columns.length;
        const rows = rs.rows.map((row) => {
          const out: unknown[] = new Array(width);
          for (let i = 0; i < width; i++) {
            const v = row[i];
            out[i] = v instanceof Uint8Array ? bytesOf(v).slice().buffer : v;
          }
          return out;
        });
        const writes = /^\s*(insert|update|delete|replace)\b/i.test(query);
        return { ok: true, columns: rs.columns, rows, rowsWritten: writes ? rs.rowsAffected : 0 };
      } catch (err) {
        return { ok: false, message: `sql.exec(): ${(err as Error).message}` };
      }
    });
  }

  close(): Promise<void> {
    return this.#run(() => {
      this.#closed = true;
      this.#client.close();
      return Promise.resolve();
    }).catch(() => {});
  }
}
