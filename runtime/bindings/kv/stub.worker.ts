/**
 * The worker half of Workers KV: the `KVNamespace` a tenant sees on `env`.
 * Runs inside the tenant's worker; every call becomes one RPC to the KV host
 * (`host.ts`), which validates it and owns the data. Values cross as bytes;
 * decoding (text, JSON, streams) happens here.
 *
 * Worker code: imports nothing but types from outside this folder.
 *
 * @module
 */
import type { BindingSpec, RpcCall, StubFactory } from "../types.ts";
import {
  KV_LIMITS,
  type KVNamespace,
  type KVNamespaceGetWithMetadataResult,
  type KVNamespaceListOptions,
  type KVNamespaceListResult,
  type KVNamespacePutOptions,
  type KVNamespaceValueType,
  type KvWireListResult,
  type KvWirePutOptions,
  type KvWireValue,
} from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const VALUE_TYPES: ReadonlySet<string> = new Set(["text", "json", "arrayBuffer", "stream"]);
const BULK_VALUE_TYPES: ReadonlySet<string> = new Set(["text", "json"]);
const INVALID_VALUE =
  "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.";

type GetOptions = KVNamespaceValueType | { type?: KVNamespaceValueType; cacheTtl?: number };

/**
 * Builds the `KVNamespace` for one KV binding inside a tenant worker.
 *
 * @example
 * ```ts
 * import { createKvStub } from "./stub.worker.ts";
 * import type { KVNamespace } from "./types.ts";
 * const rpc = (_binding: string, method: string) =>
 *   Promise.resolve(method === "get" ? new TextEncoder().encode("hello") : null);
 * const kv = createKvStub({ name: "CACHE", kind: "kv", config: {} }, rpc) as KVNamespace;
 * console.log(await kv.get("greeting")); // "hello"
 * ```
 */
export const createKvStub: StubFactory = (spec: BindingSpec, rpc: RpcCall): KVNamespace =>
  new KvNamespaceStub(spec.name, rpc) as unknown as KVNamespace;

/** The tenant-facing object; state is private so tenant code sees only the KV API. */
class KvNamespaceStub {
  readonly #binding: string;
  readonly #rpc: RpcCall;

  constructor(binding: string, rpc: RpcCall) {
    this.#binding = binding;
    this.#rpc = rpc;
  }

  async get(key: unknown, options?: GetOptions): Promise<unknown> {
    if (Array.isArray(key)) {
      const type = bulkType(options);
      const values = await this.#getMany(key);
      const result = new Map<string, unknown>();
      for (const [name, entry] of values) {
        result.set(name, entry === null ? null : decodeBulk(entry.value, type));
      }
      return result;
    }
    const type = singleType(options);
    const value = await this.#call("get", [String(key)]) as Uint8Array | null;
    return value === null ? null : decode(value, type);
  }

  async getWithMetadata(
    key: unknown,
    options?: GetOptions,
  ): Promise<
    | KVNamespaceGetWithMetadataResult<unknown, unknown>
    | Map<string, KVNamespaceGetWithMetadataResult<unknown, unknown>>
  > {
    if (Array.isArray(key)) {
      const type = bulkType(options);
      const values = await this.#getMany(key);
      const result = new Map<string, KVNamespaceGetWithMetadataResult<unknown, unknown>>();
      for (const [name, entry] of values) {
        result.set(
          name,
          entry === null ? { value: null, metadata: null, cacheStatus: null } : {
            value: decodeBulk(entry.value, type),
            metadata: entry.metadata ?? null,
            cacheStatus: null,
          },
        );
      }
      return result;
    }
    const type = singleType(options);
    const entry = await this.#call("getWithMetadata", [String(key)]) as KvWireValue | null;
    if (entry === null) return { value: null, metadata: null, cacheStatus: null };
    return {
      value: decode(entry.value, type),
      metadata: entry.metadata ?? null,
      cacheStatus: null,
    };
  }

  async put(key: unknown, value: unknown, options?: KVNamespacePutOptions): Promise<void> {
    const bytes = await toBytes(value);
    const wire: KvWirePutOptions = {};
    if (options !== undefined && options !== null) {
      if (options.expiration !== undefined) wire.expiration = options.expiration;
      if (options.expirationTtl !== undefined) wire.expirationTtl = options.expirationTtl;
      // Cloudflare stores metadata as JSON: normalize here (Dates become
      // strings, functions vanish) so what crosses is exactly what is kept.
      if (options.metadata !== undefined && options.metadata !== null) {
        const json = JSON.stringify(options.metadata);
        if (json !== undefined) wire.metadata = JSON.parse(json);
      }
    }
    await this.#call("put", [String(key), bytes, wire], [bytes.buffer as ArrayBuffer]);
  }

  async delete(key: unknown): Promise<void> {
    await this.#call("delete", [String(key)]);
  }

  async list(options: KVNamespaceListOptions = {}): Promise<KVNamespaceListResult<unknown>> {
    const prefix = options?.prefix;
    const cursor = options?.cursor;
    const page = await this.#call("list", [{
      prefix: prefix === undefined || prefix === null ? null : String(prefix),
      limit: options?.limit ?? null,
      cursor: cursor === undefined || cursor === null ? null : String(cursor),
    }]) as KvWireListResult;
    if (page.list_complete || page.cursor === undefined) {
      return { keys: page.keys, list_complete: true, cacheStatus: null };
    }
    return { keys: page.keys, list_complete: false, cursor: page.cursor, cacheStatus: null };
  }

  /** Bulk read: one entry per distinct key, in request order. */
  async #getMany(keys: unknown[]): Promise<Map<string, KvWireValue | null>> {
    const names = keys.map((key) => String(key));
    const entries = await this.#call("getMany", [names]) as (KvWireValue | null)[];
    const result = new Map<string, KvWireValue | null>();
    names.forEach((name, index) => result.set(name, entries[index] ?? null));
    return result;
  }

  #call(method: string, args: unknown[], transfer?: Transferable[]): Promise<unknown> {
    return this.#rpc(this.#binding, method, args, transfer);
  }
}

function singleType(options: GetOptions | undefined): KVNamespaceValueType {
  const type = typeof options === "string" ? options : options?.type ?? "text";
  checkCacheTtl("GET", options);
  if (!VALUE_TYPES.has(type)) {
    throw new TypeError(
      'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".',
    );
  }
  return type;
}

function bulkType(options: GetOptions | undefined): "text" | "json" {
  const type = typeof options === "string" ? options : options?.type ?? "text";
  checkCacheTtl("GET_BULK", options);
  if (!BULK_VALUE_TYPES.has(type)) {
    throw new Error(
      `KV GET_BULK failed: 400 "${String(type)}" is not a valid type. Use "json" or "text"`,
    );
  }
  return type as "text" | "json";
}

function checkCacheTtl(operation: string, options: GetOptions | undefined): void {
  if (typeof options !== "object" || options === null || options.cacheTtl === undefined) return;
  const ttl = Number(options.cacheTtl);
  if (Number.isNaN(ttl) || ttl < KV_LIMITS.MIN_CACHE_TTL_SECONDS) {
    throw new Error(
      `KV ${operation} failed: 400 Invalid cache_ttl of ${String(options.cacheTtl)}. ` +
        `Cache TTL must be at least ${KV_LIMITS.MIN_CACHE_TTL_SECONDS}.`,
    );
  }
}

function decode(bytes: Uint8Array, type: KVNamespaceValueType): unknown {
  switch (type) {
    case "text":
      return decoder.decode(bytes);
    case "json":
      return JSON.parse(decoder.decode(bytes));
    case "arrayBuffer":
      return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
        ? bytes.buffer
        : bytes.slice().buffer;
    case "stream":
      return new ReadableStream({
        type: "bytes",
        start(controller) {
          if (bytes.byteLength > 0) controller.enqueue(bytes);
          controller.close();
        },
      });
  }
}

function decodeBulk(bytes: Uint8Array, type: "text" | "json"): unknown {
  if (type === "text") return decoder.decode(bytes);
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new Error(
      "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value",
    );
  }
}

/**
 * The value as a fresh `Uint8Array` this stub owns, so its buffer can be
 * transferred without detaching anything of the tenant's (or sharing a
 * SharedArrayBuffer with the host).
 */
async function toBytes(value: unknown): Promise<Uint8Array> {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof ReadableStream) return await readAll(value);
  if (value instanceof ArrayBuffer) {
    if (value.detached) throw new TypeError(INVALID_VALUE);
    return new Uint8Array(value.slice(0));
  }
  if (value instanceof SharedArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) {
    if ((value.buffer as ArrayBuffer).detached) throw new TypeError(INVALID_VALUE);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
  }
  throw new TypeError(INVALID_VALUE);
}

/** Reads a stream of byte chunks to its end, failing early past the value limit. */
async function readAll(stream: ReadableStream): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!ArrayBuffer.isView(value)) {
        throw new TypeError("KV put(): a ReadableStream value must yield Uint8Array chunks.");
      }
      const chunk = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      total += chunk.byteLength;
      if (total > KV_LIMITS.MAX_VALUE_BYTES) {
        throw new Error(
          `KV PUT failed: 413 Value length of at least ${total} exceeds limit of ` +
            `${KV_LIMITS.MAX_VALUE_BYTES}.`,
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  // Chunks belong to the stream's producer; the copy below is ours to transfer.
  if (chunks.length === 1) return chunks[0].slice();
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
