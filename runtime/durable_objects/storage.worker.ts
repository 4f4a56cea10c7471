/**
 * `ctx.storage` of one Durable Object, inside the worker that holds it.
 * Values are structured-clone data, serialized here with `node:v8` so the
 * host stores bytes. Every call is one RPC to the binding host, which runs it
 * against the object's own libSQL file in call order; a write resolves once
 * it is committed (durable). Each call holds the object's input gate.
 *
 * `sql.exec()` is synchronous, as on Cloudflare: the worker blocks on a
 * shared buffer (`Atomics.wait`) until the host wrote the result into it.
 *
 * Worker code.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import type { RpcCall } from "../bindings/types.ts";
import {
  type DurableObjectListOptions,
  type DurableObjectStorage,
  type DurableObjectTransaction,
  MAX_BATCH_KEYS,
  type SqlStorage,
  type SqlStorageCursor,
  type SqlStorageValue,
  type WireListOptions,
  type WireSqlResult,
  type WireWrite,
} from "../bindings/durable_object/types.ts";
import type { InputGate } from "./input_gate.worker.ts";

const MAX_KEY_BYTES = 2048;
const encoder = new TextEncoder();

function checkKey(op: string, key: unknown): string {
  if (typeof key !== "string") {
    throw new TypeError(`storage.${op}(): keys must be strings, got ${typeof key}`);
  }
  if (encoder.encode(key).byteLength > MAX_KEY_BYTES) {
    throw new RangeError(`storage.${op}(): key is longer than ${MAX_KEY_BYTES} bytes`);
  }
  return key;
}

function checkKeys(op: string, keys: unknown[]): string[] {
  if (keys.length > MAX_BATCH_KEYS) {
    throw new RangeError(
      `storage.${op}(): at most ${MAX_BATCH_KEYS} keys per call, got ${keys.length}`,
    );
  }
  return keys.map((k) => checkKey(op, k));
}

function encode(op: string, key: string, value: unknown): Uint8Array {
  if (value === undefined) {
    throw new TypeError(`storage.${op}(${JSON.stringify(key)}): value must not be undefined`);
  }
  try {
    return serialize(value);
  } catch (err) {
    throw new TypeError(
      `storage.${op}(${JSON.stringify(key)}): value is not structured-cloneable: ${
        (err as Error).message
      }`,
    );
  }
}

function decode(bytes: Uint8Array): unknown {
  return deserialize(bytes);
}

function listOptions(options: DurableObjectListOptions = {}): WireListOptions {
  const out: WireListOptions = {};
  for (const k of ["start", "startAfter", "end", "prefix"] as const) {
    if (options[k] !== undefined) out[k] = checkKey("list", options[k]);
  }
  if (options.start !== undefined && options.startAfter !== undefined) {
    throw new TypeError("storage.list(): start and startAfter cannot both be set");
  }
  if (options.reverse) out.reverse = true;
  if (options.limit !== undefined) {
    if (!Number.isInteger(options.limit) || options.limit <= 0) {
      throw new RangeError(
        `storage.list(): limit must be a positive integer, got ${options.limit}`,
      );
    }
    out.limit = options.limit;
  }
  return out;
}

/** One shared buffer per worker for synchronous SQL (the worker blocks while it is used). */
let sqlBuffer: SharedArrayBuffer | undefined;
const SQL_WAIT_MS = 60_000;

/** The storage of one object. */
export class ObjectStorage implements DurableObjectStorage {
  readonly #binding: string;
  readonly #id: string;
  readonly #rpc: RpcCall;
  readonly #gate: InputGate;
  /** Writes not yet confirmed; the event's result waits for them (output gate). */
  readonly #unconfirmed = new Set<Promise<unknown>>();
  readonly sql: SqlStorage;

  constructor(binding: string, id: string, rpc: RpcCall, gate: InputGate) {
    this.#binding = binding;
    this.#id = id;
    this.#rpc = rpc;
    this.#gate = gate;
    this.sql = { exec: (query, ...bindings) => this.#exec(query, bindings) };
  }

  #call(method: string, args: unknown[]): Promise<unknown> {
    return this.#gate.hold(() => this.#rpc(this.#binding, method, [this.#id, ...args]));
  }

  #write(method: string, args: unknown[]): Promise<void> {
    const p = this.#call(method, args);
    this.#unconfirmed.add(p);
    p.catch(() => {}).finally(() => this.#unconfirmed.delete(p));
    return p as Promise<void>;
  }

  /** Resolves when every write issued so far is committed. */
  async sync(): Promise<void> {
    while (this.#unconfirmed.size) await Promise.allSettled([...this.#unconfirmed]);
  }

  get<T = unknown>(key: string): Promise<T | undefined>;
  get<T = unknown>(keys: string[]): Promise<Map<string, T>>;
  async get(keyOrKeys: string | string[]): Promise<unknown> {
    if (Array.isArray(keyOrKeys)) {
      const keys = checkKeys("get", keyOrKeys);
      const values = await this.#call("st.get", [keys]) as (Uint8Array | null)[];
      const out = new Map<string, unknown>();
      const order = keys.map((k, i) => [k, values[i]] as const).filter(([, v]) => v !== null)
        .sort(([a], [b]) => compareKeys(a, b));
      for (const [k, v] of order) out.set(k, decode(v!));
      return out;
    }
    const key = checkKey("get", keyOrKeys);
    const [value] = await this.#call("st.get", [[key]]) as (Uint8Array | null)[];
    return value === null ? undefined : decode(value);
  }

  put<T>(key: string, value: T): Promise<void>;
  put<T>(entries: Record<string, T>): Promise<void>;
  put(keyOrEntries: string | Record<string, unknown>, value?: unknown): Promise<void> {
    try {
      return this.#write("st.write", [toWrites(keyOrEntries, value)]);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  delete(keyOrKeys: string | string[]): Promise<boolean | number> {
    try {
      const many = Array.isArray(keyOrKeys);
      const keys = many ? checkKeys("delete", keyOrKeys) : [checkKey("delete", keyOrKeys)];
      const p = this.#write("st.delete", [keys]) as Promise<unknown> as Promise<number>;
      return p.then((n) => many ? n : n > 0);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async list<T = unknown>(options?: DurableObjectListOptions): Promise<Map<string, T>> {
    const rows = await this.#call("st.list", [listOptions(options)]) as [string, Uint8Array][];
    return new Map(rows.map(([k, v]) => [k, decode(v) as T]));
  }

  deleteAll(): Promise<void> {
    return this.#write("st.deleteAll", []);
  }

  async transaction<T>(closure: (txn: DurableObjectTransaction) => Promise<T>): Promise<T> {
    return await this.#gate.hold(async () => {
      const txn = new Transaction(this);
      const result = await closure(txn);
      const writes = txn.commit();
      if (writes.length) await this.#write("st.write", [writes]);
      return result;
    });
  }

  async getAlarm(): Promise<number | null> {
    return await this.#call("alarm.get", []) as number | null;
  }

  setAlarm(scheduledTime: number | Date): Promise<void> {
    const ms = scheduledTime instanceof Date ? scheduledTime.getTime() : scheduledTime;
    if (typeof ms !== "number" || !Number.isFinite(ms)) {
      return Promise.reject(
        new TypeError(`setAlarm(): expected a Date or milliseconds since the epoch, got ${ms}`),
      );
    }
    return this.#write("alarm.set", [ms]);
  }

  deleteAlarm(): Promise<void> {
    return this.#write("alarm.delete", []);
  }

  #exec(query: string, bindings: unknown[]): SqlStorageCursor<never> {
    if (typeof query !== "string") throw new TypeError("sql.exec(): query must be a string");
    sqlBuffer ??= new SharedArrayBuffer(8, { maxByteLength: 256 * 1024 * 1024 });
    const control = new Int32Array(sqlBuffer, 0, 2);
    Atomics.store(control, 0, 0);
    // The RPC promise settles later with nothing; the answer arrives in the buffer.
    this.#rpc(this.#binding, "st.sql", [this.#id, sqlBuffer, query, bindings]).catch(() => {});
    if (Atomics.wait(control, 0, 0, SQL_WAIT_MS) === "timed-out") {
      throw new Error(`sql.exec(): no answer from the host within ${SQL_WAIT_MS} ms`);
    }
    const length = control[1];
    const result = deserialize(new Uint8Array(sqlBuffer, 8, length).slice()) as WireSqlResult;
    if (!result.ok) throw new Error(result.message);
    return new Cursor(result.columns, result.rows as SqlStorageValue[][], result.rowsWritten);
  }

  /** @internal reads for transactions, without the output gate. */
  readMany(keys: string[]): Promise<(Uint8Array | null)[]> {
    return this.#call("st.get", [keys]) as Promise<(Uint8Array | null)[]>;
  }

  /** @internal */
  readList(options: WireListOptions): Promise<[string, Uint8Array][]> {
    return this.#call("st.list", [options]) as Promise<[string, Uint8Array][]>;
  }
}

function toWrites(keyOrEntries: string | Record<string, unknown>, value?: unknown): WireWrite[] {
  if (typeof keyOrEntries === "string") {
    return [[checkKey("put", keyOrEntries), encode("put", keyOrEntries, value)]];
  }
  if (keyOrEntries === null || typeof keyOrEntries !== "object") {
    throw new TypeError("storage.put(): expected a key and a value, or an object of entries");
  }
  const entries = Object.entries(keyOrEntries);
  checkKeys("put", entries.map(([k]) => k));
  return entries.map(([k, v]) => [k, encode("put", k, v)]);
}

/** UTF-8 byte order (what SQLite's BINARY collation gives for TEXT). */
function compareKeys(a: string, b: string): number {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function inRange(key: string, o: WireListOptions): boolean {
  if (o.start !== undefined && compareKeys(key, o.start) < 0) return false;
  if (o.startAfter !== undefined && compareKeys(key, o.startAfter) <= 0) return false;
  if (o.end !== undefined && compareKeys(key, o.end) >= 0) return false;
  if (o.prefix !== undefined && !key.startsWith(o.prefix)) return false;
  return true;
}

/** Buffered writes over the storage; committed in one atomic batch, or dropped. */
class Transaction implements DurableObjectTransaction {
  readonly #storage: ObjectStorage;
  readonly #writes = new Map<string, Uint8Array | null>();
  #rolledBack = false;

  constructor(storage: ObjectStorage) {
    this.#storage = storage;
  }

  commit(): WireWrite[] {
    return this.#rolledBack ? [] : [...this.#writes];
  }

  rollback(): void {
    this.#rolledBack = true;
  }

  get<T = unknown>(key: string): Promise<T | undefined>;
  get<T = unknown>(keys: string[]): Promise<Map<string, T>>;
  async get(keyOrKeys: string | string[]): Promise<unknown> {
    const many = Array.isArray(keyOrKeys);
    const keys = many ? checkKeys("get", keyOrKeys) : [checkKey("get", keyOrKeys)];
    const missing = keys.filter((k) => !this.#writes.has(k));
    const fetched = missing.length ? await this.#storage.readMany(missing) : [];
    const found = new Map(missing.map((k, i) => [k, fetched[i]]));
    const bytes = (k: string) => this.#writes.has(k) ? this.#writes.get(k)! : found.get(k) ?? null;
    if (!many) {
      const b = bytes(keys[0]);
      return b === null ? undefined : decode(b);
    }
    const out = new Map<string, unknown>();
    for (const k of [...keys].sort(compareKeys)) {
      const b = bytes(k);
      if (b !== null) out.set(k, decode(b));
    }
    return out;
  }

  put<T>(key: string, value: T): Promise<void>;
  put<T>(entries: Record<string, T>): Promise<void>;
  put(keyOrEntries: string | Record<string, unknown>, value?: unknown): Promise<void> {
    try {
      for (const [k, v] of toWrites(keyOrEntries, value)) this.#writes.set(k, v);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  async delete(keyOrKeys: string | string[]): Promise<boolean | number> {
    const many = Array.isArray(keyOrKeys);
    const keys = many ? checkKeys("delete", keyOrKeys) : [checkKey("delete", keyOrKeys)];
    const existing = await this.get(keys) as Map<string, unknown>;
    for (const k of keys) this.#writes.set(k, null);
    return many ? existing.size : existing.size > 0;
  }

  async list<T = unknown>(options?: DurableObjectListOptions): Promise<Map<string, T>> {
    const o = listOptions(options);
    const rows = await this.#storage.readList({ ...o, limit: undefined });
    const merged = new Map<string, Uint8Array>(rows);
    for (const [k, v] of this.#writes) {
      if (!inRange(k, o)) continue;
      if (v === null) merged.delete(k);
      else merged.set(k, v);
    }
    let keys = [...merged.keys()].sort(compareKeys);
    if (o.reverse) keys.reverse();
    if (o.limit !== undefined) keys = keys.slice(0, o.limit);
    return new Map(keys.map((k) => [k, decode(merged.get(k)!) as T]));
  }
}

/** The result of one `sql.exec()`. */
class Cursor implements SqlStorageCursor<never> {
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
  readonly #rows: SqlStorageValue[][];
  #next = 0;

  constructor(columns: string[], rows: SqlStorageValue[][], rowsWritten: number) {
    this.columnNames = columns;
    this.#rows = rows;
    this.rowsRead = rows.length;
    this.rowsWritten = rowsWritten;
  }

  #object(row: SqlStorageValue[]): never {
    const out: Record<string, SqlStorageValue> = {};
    this.columnNames.forEach((c, i) => out[c] = row[i]);
    return out as never;
  }

  next(): IteratorResult<never> {
    if (this.#next >= this.#rows.length) return { done: true, value: undefined };
    return { done: false, value: this.#object(this.#rows[this.#next++]) };
  }

  [Symbol.iterator](): Iterator<never> {
    return { next: () => this.next() };
  }

  toArray(): never[] {
    const out: never[] = [];
    for (const row of this) out.push(row);
    return out;
  }

  one(): never {
    const rows = this.toArray();
    if (rows.length !== 1) {
      throw new Error(
        rows.length === 0
          ? "Expected exactly one result from SQL query, but got no results."
          : `Expected exactly one result from SQL query, but got ${rows.length} results.`,
      );
    }
    return rows[0];
  }

  *raw(): IterableIterator<SqlStorageValue[]> {
    while (this.#next < this.#rows.length) yield this.#rows[this.#next++];
  }
}
