/**
 * Workers KV as tenants see it (`env.MY_KV`), the limits the host enforces,
 * and the shape of the RPC between the stub (`stub.worker.ts`) and the host
 * (`host.ts`). Safe to import from worker code: no host modules.
 *
 * The tenant-facing types follow `@cloudflare/workers-types`, so code written
 * for Cloudflare type-checks unchanged.
 *
 * @module
 */

/** Cloudflare's documented Workers KV limits, enforced by the KV host. */
export const KV_LIMITS = {
  /** Longest key, in UTF-8 bytes. */
  MAX_KEY_BYTES: 512,
  /** Largest value, in bytes (25 MiB). */
  MAX_VALUE_BYTES: 25 * 1024 * 1024,
  /** Largest metadata, in bytes of its JSON serialization. */
  MAX_METADATA_BYTES: 1024,
  /** Shortest `expirationTtl`, and how far ahead an absolute `expiration` must be, seconds. */
  MIN_EXPIRATION_TTL_SECONDS: 60,
  /** Largest (and default) `list()` page. */
  MAX_LIST_LIMIT: 1000,
  /** Most keys in one bulk `get([…])`. */
  MAX_BULK_GET_KEYS: 100,
  /** Smallest accepted `cacheTtl`, seconds (the option has no other effect in Worky). */
  MIN_CACHE_TTL_SECONDS: 30,
} as const;

/** How `get` decodes a value. */
export type KVNamespaceValueType = "text" | "json" | "arrayBuffer" | "stream";

/** Options of `get` / `getWithMetadata`. */
export interface KVNamespaceGetOptions<Type> {
  /** How to decode the value (default `"text"`). */
  type: Type;
  /**
   * Seconds an edge may cache the value (at least 30). Accepted for
   * compatibility; Worky reads the database each time.
   */
  cacheTtl?: number;
}

/** Options of `put`. */
export interface KVNamespacePutOptions {
  /** Absolute expiry, seconds since the epoch; at least 60 s in the future. */
  expiration?: number;
  /** Expiry relative to now, seconds; at least 60. Wins over `expiration`. */
  expirationTtl?: number;
  /** Any JSON-serializable value, at most 1024 bytes serialized. */
  // deno-lint-ignore no-explicit-any
  metadata?: any | null;
}

/** Options of `list`. */
export interface KVNamespaceListOptions {
  /** 1 to 1000 keys per page (default 1000). */
  limit?: number;
  /** Only keys starting with this string. */
  prefix?: string | null;
  /** The `cursor` of the previous page. */
  cursor?: string | null;
}

/** One key of a `list` page. */
export interface KVNamespaceListKey<Metadata, Key extends string = string> {
  name: Key;
  /** Seconds since the epoch, when the key expires. */
  expiration?: number;
  metadata?: Metadata;
}

/** A `list` page; when `list_complete` is false, pass `cursor` to get the next. */
export type KVNamespaceListResult<Metadata, Key extends string = string> =
  | {
    list_complete: false;
    keys: KVNamespaceListKey<Metadata, Key>[];
    cursor: string;
    cacheStatus: string | null;
  }
  | {
    list_complete: true;
    keys: KVNamespaceListKey<Metadata, Key>[];
    cacheStatus: string | null;
  };

/** What `getWithMetadata` resolves to; `value` and `metadata` are null for a missing key. */
export interface KVNamespaceGetWithMetadataResult<Value, Metadata> {
  value: Value | null;
  metadata: Metadata | null;
  /** Always null in Worky (there is no edge cache). */
  cacheStatus: string | null;
}

/**
 * A Workers KV namespace, as bound on `env`. Keys are strings of 1 to 512
 * UTF-8 bytes (not `"."` or `".."`), values up to 25 MiB. Every method returns
 * a promise; invalid input rejects it with Cloudflare's messages.
 *
 * @example
 * ```ts
 * import type { KVNamespace } from "./types.ts";
 * interface Env {
 *   CART: KVNamespace;
 * }
 * const worker = {
 *   async fetch(_request: Request, env: Env): Promise<Response> {
 *     const count = Number(await env.CART.get("count") ?? "0") + 1;
 *     await env.CART.put("count", String(count), { expirationTtl: 3600 });
 *     return new Response(`visit ${count}`);
 *   },
 * };
 * ```
 */
export interface KVNamespace<Key extends string = string> {
  /** The value of `key` as text, or null when absent. */
  get(key: Key, options?: Partial<KVNamespaceGetOptions<undefined>>): Promise<string | null>;
  get(key: Key, type: "text"): Promise<string | null>;
  /** The value of `key` parsed as JSON, or null when absent. */
  get<ExpectedValue = unknown>(key: Key, type: "json"): Promise<ExpectedValue | null>;
  get(key: Key, type: "arrayBuffer"): Promise<ArrayBuffer | null>;
  get(key: Key, type: "stream"): Promise<ReadableStream | null>;
  get(key: Key, options?: KVNamespaceGetOptions<"text">): Promise<string | null>;
  get<ExpectedValue = unknown>(
    key: Key,
    options?: KVNamespaceGetOptions<"json">,
  ): Promise<ExpectedValue | null>;
  get(key: Key, options?: KVNamespaceGetOptions<"arrayBuffer">): Promise<ArrayBuffer | null>;
  get(key: Key, options?: KVNamespaceGetOptions<"stream">): Promise<ReadableStream | null>;
  /** Up to 100 keys at once, as text or JSON; absent keys map to null. */
  get(key: Array<Key>, type: "text"): Promise<Map<string, string | null>>;
  get<ExpectedValue = unknown>(
    key: Array<Key>,
    type: "json",
  ): Promise<Map<string, ExpectedValue | null>>;
  get(
    key: Array<Key>,
    options?: Partial<KVNamespaceGetOptions<undefined>>,
  ): Promise<Map<string, string | null>>;
  get(
    key: Array<Key>,
    options?: KVNamespaceGetOptions<"text">,
  ): Promise<Map<string, string | null>>;
  get<ExpectedValue = unknown>(
    key: Array<Key>,
    options?: KVNamespaceGetOptions<"json">,
  ): Promise<Map<string, ExpectedValue | null>>;

  /** Keys in UTF-8 byte order, a page at a time. */
  list<Metadata = unknown>(
    options?: KVNamespaceListOptions,
  ): Promise<KVNamespaceListResult<Metadata, Key>>;

  /** Writes `value` at `key` (a stream is read to its end first). */
  put(
    key: Key,
    value: string | ArrayBuffer | ArrayBufferView | ReadableStream,
    options?: KVNamespacePutOptions,
  ): Promise<void>;

  /** The value of `key` with the metadata it was written with. */
  getWithMetadata<Metadata = unknown>(
    key: Key,
    options?: Partial<KVNamespaceGetOptions<undefined>>,
  ): Promise<KVNamespaceGetWithMetadataResult<string, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    type: "text",
  ): Promise<KVNamespaceGetWithMetadataResult<string, Metadata>>;
  getWithMetadata<ExpectedValue = unknown, Metadata = unknown>(
    key: Key,
    type: "json",
  ): Promise<KVNamespaceGetWithMetadataResult<ExpectedValue, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    type: "arrayBuffer",
  ): Promise<KVNamespaceGetWithMetadataResult<ArrayBuffer, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    type: "stream",
  ): Promise<KVNamespaceGetWithMetadataResult<ReadableStream, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    options: KVNamespaceGetOptions<"text">,
  ): Promise<KVNamespaceGetWithMetadataResult<string, Metadata>>;
  getWithMetadata<ExpectedValue = unknown, Metadata = unknown>(
    key: Key,
    options: KVNamespaceGetOptions<"json">,
  ): Promise<KVNamespaceGetWithMetadataResult<ExpectedValue, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    options: KVNamespaceGetOptions<"arrayBuffer">,
  ): Promise<KVNamespaceGetWithMetadataResult<ArrayBuffer, Metadata>>;
  getWithMetadata<Metadata = unknown>(
    key: Key,
    options: KVNamespaceGetOptions<"stream">,
  ): Promise<KVNamespaceGetWithMetadataResult<ReadableStream, Metadata>>;
  /** Up to 100 keys at once with their metadata, as text or JSON. */
  getWithMetadata<Metadata = unknown>(
    key: Array<Key>,
    type: "text",
  ): Promise<Map<string, KVNamespaceGetWithMetadataResult<string, Metadata>>>;
  getWithMetadata<ExpectedValue = unknown, Metadata = unknown>(
    key: Array<Key>,
    type: "json",
  ): Promise<Map<string, KVNamespaceGetWithMetadataResult<ExpectedValue, Metadata>>>;
  getWithMetadata<Metadata = unknown>(
    key: Array<Key>,
    options?: Partial<KVNamespaceGetOptions<undefined>>,
  ): Promise<Map<string, KVNamespaceGetWithMetadataResult<string, Metadata>>>;
  getWithMetadata<Metadata = unknown>(
    key: Array<Key>,
    options?: KVNamespaceGetOptions<"text">,
  ): Promise<Map<string, KVNamespaceGetWithMetadataResult<string, Metadata>>>;
  getWithMetadata<ExpectedValue = unknown, Metadata = unknown>(
    key: Array<Key>,
    options?: KVNamespaceGetOptions<"json">,
  ): Promise<Map<string, KVNamespaceGetWithMetadataResult<ExpectedValue, Metadata>>>;

  /** Removes `key`; removing an absent key succeeds. */
  delete(key: Key): Promise<void>;
}

// ---------------------------------------------------------------------------
// The RPC between stub and host (binding kind "kv"). Values cross as bytes;
// decoding to text / JSON / streams happens in the worker.
// ---------------------------------------------------------------------------

/** A stored value and its metadata, as the host returns it. */
export interface KvWireValue {
  value: Uint8Array;
  metadata: unknown | null;
}

/** `put` options as the stub sends them (the tenant's options, metadata JSON-normalized). */
export interface KvWirePutOptions {
  expiration?: number | string | null;
  expirationTtl?: number | string | null;
  metadata?: unknown;
}

/** `list` options as the stub sends them. */
export interface KvWireListOptions {
  prefix?: string | null;
  limit?: number | null;
  cursor?: string | null;
}

/** A `list` page as the host returns it (the stub adds `cacheStatus`). */
export interface KvWireListResult {
  keys: { name: string; expiration?: number; metadata?: unknown }[];
  list_complete: boolean;
  cursor?: string;
}

/**
 * The methods the KV host serves: `rpc(binding, method, args)` with `args`
 * as these parameter lists, resolving to these results.
 */
export interface KvRpcMethods {
  get(key: string): Uint8Array | null;
  getWithMetadata(key: string): KvWireValue | null;
  /** One result per requested key, in order; null where absent. */
  getMany(keys: string[]): (KvWireValue | null)[];
  put(key: string, value: Uint8Array, options?: KvWirePutOptions): void;
  delete(key: string): void;
  list(options?: KvWireListOptions): KvWireListResult;
}
