/**
 * Durable Object types: what a tenant sees (`DurableObjectNamespace`,
 * `DurableObjectId`, `DurableObjectStub`, `DurableObjectState`,
 * `DurableObjectStorage`, `SqlStorage`), shaped like Cloudflare's, and the
 * wire shapes between the stub, the host and the object's worker.
 *
 * Types and wire constants, with no runtime imports: imported by both sides
 * (the worker's `*.worker.ts` files and the host).
 *
 * @module
 */
import type { WorkyWebSocket } from "../../websocket/types.ts";

/** The identity of one object of one class. `toString()` is 64 lowercase hex characters. */
export interface DurableObjectId {
  toString(): string;
  /** The name given to `idFromName`/`getByName`, if the id came from one. */
  readonly name?: string;
  equals(other: DurableObjectId): boolean;
}

/** A client of one object: `fetch()` and every public method of its class, as RPC. */
export type DurableObjectStub<T = unknown> =
  & {
    readonly id: DurableObjectId;
    readonly name?: string;
    fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  }
  & (T extends object ? {
      [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends
        (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
    }
    : Record<string, (...args: unknown[]) => Promise<unknown>>);

/** `env.BINDING` for a Durable Object class. */
export interface DurableObjectNamespace<T = unknown> {
  /** The same name always gives the same id (per tenant and class). */
  idFromName(name: string): DurableObjectId;
  /** A new random id. */
  newUniqueId(options?: { jurisdiction?: string }): DurableObjectId;
  /** Parses `id.toString()`; throws a TypeError for anything that is not an id of this class. */
  idFromString(id: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub<T>;
  /** `get(idFromName(name))`. */
  getByName(name: string): DurableObjectStub<T>;
}

/** Options of {@link DurableObjectStorage.list}. Keys are compared in UTF-8 byte order. */
export interface DurableObjectListOptions {
  /** First key (inclusive). */
  start?: string;
  /** First key after this one (exclusive). */
  startAfter?: string;
  /** Stop before this key (exclusive). */
  end?: string;
  prefix?: string;
  reverse?: boolean;
  limit?: number;
}

/** One `sql.exec()` result: iterate rows as objects, or use `toArray`/`one`/`raw`. */
export interface SqlStorageCursor<T = Record<string, SqlStorageValue>> extends Iterable<T> {
  readonly columnNames: string[];
  readonly rowsRead: number;
  readonly rowsWritten: number;
  next(): IteratorResult<T>;
  toArray(): T[];
  /** The only row; throws if there are none or more than one. */
  one(): T;
  /** Rows as arrays of column values. */
  raw(): IterableIterator<SqlStorageValue[]>;
}

/** A value in or out of SQL. */
export type SqlStorageValue = ArrayBuffer | string | number | bigint | null;

/** The object's own SQLite database. */
export interface SqlStorage {
  exec<T = Record<string, SqlStorageValue>>(
    query: string,
    ...bindings: unknown[]
  ): SqlStorageCursor<T>;
}

/** The key-value calls `ctx.storage` and a transaction share. */
export interface DurableObjectKeyValue {
  get<T = unknown>(key: string): Promise<T | undefined>;
  get<T = unknown>(keys: string[]): Promise<Map<string, T>>;
  put<T>(key: string, value: T): Promise<void>;
  put<T>(entries: Record<string, T>): Promise<void>;
  delete(key: string): Promise<boolean>;
  delete(keys: string[]): Promise<number>;
  list<T = unknown>(options?: DurableObjectListOptions): Promise<Map<string, T>>;
}

/** Writes of a transaction; reads see the transaction's own writes. */
export interface DurableObjectTransaction extends DurableObjectKeyValue {
  /** Discards the transaction's writes when the callback ends. */
  rollback(): void;
}

/** `ctx.storage`: the object's transactional, strongly consistent storage. */
export interface DurableObjectStorage extends DurableObjectKeyValue {
  deleteAll(): Promise<void>;
  transaction<T>(closure: (txn: DurableObjectTransaction) => Promise<T>): Promise<T>;
  getAlarm(): Promise<number | null>;
  setAlarm(scheduledTime: number | Date): Promise<void>;
  deleteAlarm(): Promise<void>;
  /** Resolves when every write issued so far is durable. */
  sync(): Promise<void>;
  readonly sql: SqlStorage;
}

/** `this.ctx` of a Durable Object. */
export interface DurableObjectState {
  readonly id: DurableObjectId;
  readonly storage: DurableObjectStorage;
  /** Holds every other event until `callback` settles (use it in the constructor). */
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
  waitUntil(promise: Promise<unknown>): void;
  /**
   * Accepts the server end of a `WebSocketPair` for this object: its messages,
   * closes and errors call `webSocketMessage(ws, message)`, `webSocketClose(ws,
   * code, reason, wasClean)` and `webSocketError(ws, error)` (through the input
   * gate). `tags` (at most 10) select sockets in `getWebSockets(tag)`.
   */
  acceptWebSocket(ws: WorkyWebSocket, tags?: string[]): void;
  /** The open sockets accepted by this object, all or those with `tag`. */
  getWebSockets(tag?: string): WorkyWebSocket[];
  /** The tags a socket was accepted with. */
  getTags(ws: WorkyWebSocket): string[];
}

/** What `alarm()` receives. */
export interface AlarmInvocationInfo {
  retryCount: number;
  isRetry: boolean;
}

// ------------------------------------------------------------------- wire

/** Config of a `durable_object` binding spec. */
export interface DurableObjectBindingConfig {
  tenant: string;
  className: string;
}

/** Event kind delivered to the worker that holds an object. */
export const DO_EVENT = "durable_object";

/** A request crossing to an object's `fetch`. */
export interface WireRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
}

/** A response crossing back. */
export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
  /** A 101 answer's WebSocket: the id of the client end the object's worker exported. */
  webSocket?: string;
}

/** The payload of a {@link DO_EVENT} event. */
export type ObjectEvent =
  & { binding: string; className: string; id: string; name?: string }
  & (
    | { op: "call"; method: string; args: unknown[] }
    | { op: "fetch"; request: WireRequest }
    | { op: "alarm"; retryCount: number }
    | { op: "evict" }
  );

/** An error thrown by tenant code inside an object, as it crosses back. */
export interface WireThrown {
  name: string;
  message: string;
  stack?: string;
}

/** The result of an object event: `[true, value]` or `[false, thrown]`. */
export type ObjectResult = [true, unknown] | [false, WireThrown];

/** A `list()` range, as the host receives it (the tenant's options, checked by the stub). */
export type WireListOptions = DurableObjectListOptions;

/** One write of a batch: a value's bytes, or null to delete. */
export type WireWrite = [key: string, value: Uint8Array | null];

/** An `sql.exec()` result as the host writes it into the shared buffer. */
export type WireSqlResult =
  | { ok: true; columns: string[]; rows: unknown[][]; rowsWritten: number }
  | { ok: false; message: string };

/** Cloudflare's batch limit: keys per get/put/delete call. */
export const MAX_BATCH_KEYS = 128;
