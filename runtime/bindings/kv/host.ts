/**
 * The host half of Workers KV: validates each call from a tenant's stub
 * against Cloudflare's limits and serves it from the `KvStorage` the control
 * plane provides. Error messages follow Cloudflare's (and miniflare's) wording
 * so tenant code and its tests behave as they do on Cloudflare.
 *
 * @module
 */
import type { Clock } from "../../clock.ts";
import { WorkyError } from "../../errors.ts";
import type {
  BindingHost,
  BindingPlugin,
  BindingSpec,
  CallMeta,
  HostBindingContext,
} from "../types.ts";
import { requireConfigString, requireService } from "../host_requirements.ts";
import type { KvStorage } from "./storage.ts";
import { KV_LIMITS, type KvRpcMethods, type KvWireListResult, type KvWireValue } from "./types.ts";

const encoder = new TextEncoder();

type KvOperation = "GET" | "GET_BULK" | "PUT" | "DELETE";

/** A Cloudflare-style KV error: `KV PUT failed: 400 <detail>`. */
function kvError(operation: KvOperation, status: 400 | 413 | 414, detail: string): WorkyError {
  const code = status === 400 ? "ERR_KV_INVALID" : "ERR_KV_LIMIT";
  return new WorkyError(code, `KV ${operation} failed: ${status} ${detail}`);
}

/**
 * The KV binding host for one namespace of one deployment. Each method of
 * {@link KvRpcMethods} is served by {@link call}.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../../../control-plane/storage/database.ts";
 * import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";
 * import { ManualClock } from "../../clock.ts";
 * import { KvBindingHost } from "./host.ts";
 * const database = await openDatabase(":memory:");
 * const storage = new LibsqlKvStore(database.db);
 * const host = new KvBindingHost("CART", "tenant-a:CART", storage, new ManualClock(0));
 * await host.call("put", ["k", new TextEncoder().encode("v")], { tenant: "tenant-a" });
 * console.log(await host.call("get", ["k"], { tenant: "tenant-a" })); // Uint8Array [ 118 ]
 * database.close();
 * ```
 */
export class KvBindingHost implements BindingHost {
  constructor(
    /** The binding name on `env`, for messages. */
    readonly binding: string,
    /** The storage namespace all calls are scoped to. */
    readonly namespace: string,
    private readonly storage: KvStorage,
    private readonly clock: Clock,
  ) {}

  /** Serves one RPC call from the stub. */
  call(method: string, args: unknown[], _meta: CallMeta): Promise<unknown> {
    if (!Array.isArray(args)) args = [];
    switch (method) {
      case "get":
        return this.get(args[0]);
      case "getWithMetadata":
        return this.getWithMetadata(args[0]);
      case "getMany":
        return this.getMany(args[0]);
      case "put":
        return this.put(args[0], args[1], args[2]);
      case "delete":
        return this.delete(args[0]);
      case "list":
        return this.list(args[0]);
      default:
        return Promise.reject(
          new WorkyError(
            "ERR_BAD_REQUEST",
            `KV binding "${this.binding}" has no method ${JSON.stringify(method)}`,
          ),
        );
    }
  }

  async get(key: unknown): Promise<ReturnType<KvRpcMethods["get"]>> {
    const name = checkKey("GET", "get", key);
    const entry = await this.storage.get(this.namespace, name, this.clock.now());
    return entry === null ? null : exact(entry.value);
  }

  async getWithMetadata(key: unknown): Promise<ReturnType<KvRpcMethods["getWithMetadata"]>> {
    const name = checkKey("GET", "getWithMetadata", key);
    const entry = await this.storage.get(this.namespace, name, this.clock.now());
    return entry === null ? null : { value: exact(entry.value), metadata: entry.metadata };
  }

  async getMany(keys: unknown): Promise<(KvWireValue | null)[]> {
    if (!Array.isArray(keys)) {
      throw new WorkyError("ERR_KV_INVALID", "KV GET_BULK failed: 400 keys must be an array");
    }
    if (keys.length < 1) throw kvError("GET_BULK", 400, "You must request a minimum of 1 key");
    if (keys.length > KV_LIMITS.MAX_BULK_GET_KEYS) {
      throw kvError(
        "GET_BULK",
        400,
        `You can request a maximum of ${KV_LIMITS.MAX_BULK_GET_KEYS} keys`,
      );
    }
    for (const key of keys) {
      if (typeof key !== "string") {
        throw kvError("GET_BULK", 400, `Key name ${String(key)} is not a string`);
      }
      if (key === "" || key === "." || key === "..") {
        throw kvError("GET_BULK", 400, `Key name ${key} is not legal`);
      }
      const length = encoder.encode(key).byteLength;
      if (length > KV_LIMITS.MAX_KEY_BYTES) {
        throw kvError("GET_BULK", 414, `Encoded length of ${length} is too long`);
      }
    }
    // A key with a lone surrogate cannot be stored, so it is simply absent.
    const storable = (keys as string[]).filter((key) => key.isWellFormed());
    const found = storable.length === 0
      ? new Map()
      : await this.storage.getMany(this.namespace, storable, this.clock.now());
    return (keys as string[]).map((key) => {
      const entry = found.get(key);
      return entry === undefined ? null : { value: exact(entry.value), metadata: entry.metadata };
    });
  }

  async put(key: unknown, value: unknown, options: unknown): Promise<void> {
    const name = checkKey("PUT", "put", key);
    const bytes = toBytes(value);
    const opts = (options ?? {}) as Record<string, unknown>;
    if (typeof opts !== "object") {
      throw new WorkyError("ERR_KV_INVALID", "KV PUT failed: 400 options must be an object");
    }

    const nowSeconds = Math.floor(this.clock.now() / 1000);
    let expirationSeconds: number | null = null;
    const ttl = toInteger(opts.expirationTtl);
    const absolute = toInteger(opts.expiration);
    if (ttl !== undefined) {
      if (Number.isNaN(ttl) || ttl <= 0) {
        throw kvError(
          "PUT",
          400,
          `Invalid expiration_ttl of ${String(opts.expirationTtl)}. ` +
            "Please specify integer greater than 0.",
        );
      }
      if (ttl < KV_LIMITS.MIN_EXPIRATION_TTL_SECONDS) {
        throw kvError(
          "PUT",
          400,
          `Invalid expiration_ttl of ${String(opts.expirationTtl)}. ` +
            `Expiration TTL must be at least ${KV_LIMITS.MIN_EXPIRATION_TTL_SECONDS}.`,
        );
      }
      expirationSeconds = nowSeconds + ttl;
    } else if (absolute !== undefined) {
      if (Number.isNaN(absolute) || absolute <= nowSeconds) {
        throw kvError(
          "PUT",
          400,
          `Invalid expiration of ${String(opts.expiration)}. Please specify integer greater ` +
            "than the current number of seconds since the UNIX epoch.",
        );
      }
      if (absolute < nowSeconds + KV_LIMITS.MIN_EXPIRATION_TTL_SECONDS) {
        throw kvError(
          "PUT",
          400,
          `Invalid expiration of ${String(opts.expiration)}. Expiration times must be at ` +
            `least ${KV_LIMITS.MIN_EXPIRATION_TTL_SECONDS} seconds in the future.`,
        );
      }
      expirationSeconds = absolute;
    }

    if (bytes.byteLength > KV_LIMITS.MAX_VALUE_BYTES) {
      throw kvError(
        "PUT",
        413,
        `Value length of ${bytes.byteLength} exceeds limit of ${KV_LIMITS.MAX_VALUE_BYTES}.`,
      );
    }

    let metadata: unknown = null;
    if (opts.metadata !== undefined && opts.metadata !== null) {
      let json: string | undefined;
      try {
        json = JSON.stringify(opts.metadata);
      } catch (cause) {
        throw new WorkyError(
          "ERR_KV_INVALID",
          `KV PUT failed: 400 Metadata must be JSON-serializable: ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
        );
      }
      if (json !== undefined) {
        const length = encoder.encode(json).byteLength;
        if (length > KV_LIMITS.MAX_METADATA_BYTES) {
          throw kvError(
            "PUT",
            413,
            `Metadata length of ${length} exceeds limit of ${KV_LIMITS.MAX_METADATA_BYTES}.`,
          );
        }
        metadata = JSON.parse(json);
      }
    }

    await this.storage.put(this.namespace, name, bytes, {
      expiration: expirationSeconds === null ? null : expirationSeconds * 1000,
      metadata,
    });
  }

  async delete(key: unknown): Promise<void> {
    const name = checkKey("DELETE", "delete", key);
    await this.storage.delete(this.namespace, name);
  }

  async list(options: unknown): Promise<KvWireListResult> {
    const opts = (options ?? {}) as Record<string, unknown>;
    if (typeof opts !== "object") {
      throw new WorkyError("ERR_KV_INVALID", "KV GET failed: 400 list options must be an object");
    }
    const prefix = opts.prefix ?? "";
    if (typeof prefix !== "string") {
      throw new WorkyError("ERR_KV_INVALID", "KV GET failed: 400 prefix must be a string");
    }
    const cursor = opts.cursor ?? null;
    if (cursor !== null && typeof cursor !== "string") {
      throw new WorkyError("ERR_KV_INVALID", "KV GET failed: 400 Invalid cursor");
    }
    const limit = checkListLimit(opts.limit);

    // No stored key holds a lone surrogate, so such a prefix matches nothing.
    if (!prefix.isWellFormed()) return { keys: [], list_complete: true };
    try {
      return await this.storage.list(
        this.namespace,
        { prefix, limit, cursor: cursor === "" ? null : cursor },
        this.clock.now(),
      );
    } catch (error) {
      if (error instanceof WorkyError && error.code === "ERR_KV_INVALID") {
        throw new WorkyError("ERR_KV_INVALID", "KV GET failed: 400 Invalid cursor", {
          cause: error,
        });
      }
      throw error;
    }
  }
}

/**
 * The KV binding plugin (kind `"kv"`). Its spec's `config.namespace` names
 * the storage namespace; the control plane provides `services.kv`.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../../../control-plane/storage/database.ts";
 * import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";
 * import { systemClock } from "../../clock.ts";
 * import { kvPlugin } from "./host.ts";
 * const database = await openDatabase(":memory:");
 * const host = kvPlugin.createHost(
 *   { name: "CART", kind: "kv", config: { namespace: "shop:CART" } },
 *   { tenant: "shop", clock: systemClock, services: { kv: new LibsqlKvStore(database.db) } },
 * );
 * console.log(await host.call("get", ["cart:42"], { tenant: "shop" })); // null
 * database.close();
 * ```
 */
export const kvPlugin: BindingPlugin = {
  kind: "kv",
  createHost(spec: BindingSpec, ctx: HostBindingContext): BindingHost {
    const namespace = requireConfigString("KV", spec, ctx, "namespace");
    const storage = requireService<KvStorage>("KV", spec, ctx, {
      service: "kv",
      what: "KV storage",
    });
    return new KvBindingHost(spec.name, namespace, storage, ctx.clock);
  },
};

/** Validates a single key (Cloudflare's rules) and returns it. */
function checkKey(operation: KvOperation, method: string, key: unknown): string {
  if (typeof key !== "string") {
    throw new WorkyError(
      "ERR_KV_INVALID",
      `Failed to execute '${method}' on 'KvNamespace': parameter 1 is not of type 'string'.`,
    );
  }
  if (key === "") throw new WorkyError("ERR_KV_INVALID", "Key name cannot be empty.");
  if (key === "." || key === "..") {
    throw new WorkyError("ERR_KV_INVALID", `"${key}" is not allowed as a key name.`);
  }
  if (!key.isWellFormed()) throw kvError(operation, 400, "Could not URL-decode key name");
  const length = encoder.encode(key).byteLength;
  if (length > KV_LIMITS.MAX_KEY_BYTES) {
    throw kvError(
      operation,
      414,
      `UTF-8 encoded length of ${length} exceeds key length limit of ${KV_LIMITS.MAX_KEY_BYTES}.`,
    );
  }
  return key;
}

function checkListLimit(value: unknown): number {
  if (value === undefined || value === null) return KV_LIMITS.MAX_LIST_LIMIT;
  const limit = toInteger(value);
  if (limit === undefined || Number.isNaN(limit) || limit < 1) {
    throw kvError(
      "GET",
      400,
      `Invalid key_count_limit of ${String(value)}. Please specify an integer greater than 0.`,
    );
  }
  if (limit > KV_LIMITS.MAX_LIST_LIMIT) {
    throw kvError(
      "GET",
      400,
      `Invalid key_count_limit of ${String(value)}. ` +
        `Please specify integer less than ${KV_LIMITS.MAX_LIST_LIMIT}.`,
    );
  }
  return limit;
}

/** Cloudflare's reading of integer options: numbers round, strings parse, the rest is absent. */
function toInteger(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? Math.round(value) : NaN;
  if (typeof value === "string") return parseInt(value, 10);
  return undefined;
}

/**
 * `bytes`, alone in its buffer: structured clone copies a view's whole
 * buffer, so a view into a larger one would send (and leak) the rest.
 */
function exact(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
}

function toBytes(value: unknown): Uint8Array {
  if (ArrayBuffer.isView(value)) {
    const view = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    // Memory shared with the worker could change under the write: copy it.
    return view.buffer instanceof SharedArrayBuffer ? view.slice() : view;
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new WorkyError(
    "ERR_KV_INVALID",
    "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.",
  );
}
