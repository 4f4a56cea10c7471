/**
 * The host ↔ worker protocol. Imported by both sides, so it holds only types,
 * constants and one pure helper. Messages are arrays tagged by a small integer (cheaper to
 * structured-clone than objects on the hot path). Bodies never cross as
 * copies of streams: a small complete body travels inline, anything else as a
 * transferred ReadableStream.
 */
import type { BindingSpec } from "./bindings/types.ts";
import type { EgressProxyAddress } from "./egress.worker.ts";

/** Header list as `[name, value]` pairs (keeps repeated `set-cookie`). */
export type HeaderPairs = [string, string][];

/** `Headers.prototype.forEach` as loaded (before any tenant code could replace it). */
const forEachHeader = Headers.prototype.forEach;

/**
 * The pairs of `headers`, in Headers' own order (repeated `set-cookie` stay separate).
 * `forEach` walks the same sorted list as the iterator at a quarter of its cost (measured:
 * 0.17 vs 0.71 µs for one header), which matters twice per request.
 */
export function headerPairs(headers: Headers): HeaderPairs {
  const out: HeaderPairs = [];
  forEachHeader.call(headers, (value, name) => out.push([name, value]));
  return out;
}

/** Inline body: text stays text, bytes stay bytes. */
export type InlineBody = string | Uint8Array<ArrayBuffer> | null;

/** Host → worker tags. */
export const H_INIT = 0;
export const H_FETCH = 1;
export const H_RPC_RESULT = 2;
export const H_EVENT = 3;
/** Several host messages in one (sent while the worker has events in flight). */
export const H_BATCH = 4;

/**
 * A complete response body at least this big crosses from the worker as bytes whose buffer is
 * transferred, not cloned (a cloned 8 MB string is a copy plus 8 MB of garbage on the host's
 * heap per response; the host thread serves every tenant), and the host hands that buffer to
 * the socket without copying it again (`worker_handle.ts`). Encoding it is the tenant's own
 * thread's work.
 */
export const BIG_BODY = 64 * 1024;

/** Worker → host tags. */
export const W_READY = 10;
export const W_INIT_ERROR = 11;
export const W_RESPONSE = 12;
export const W_ERROR = 13;
export const W_RPC = 14;
export const W_LOG = 15;
export const W_SETTLED = 16;
export const W_FATAL = 17;
export const W_EVENT_RESULT = 18;
/** Several worker messages in one (replies finished in the same turn). */
export const W_BATCH = 19;
/** The bootstrap finished loading: the worker is a ready spare. */
export const W_BOOTED = 20;
/** An uncaught error or unhandled rejection outside any reply: logged, the worker serves on. */
export const W_UNCAUGHT = 21;
/** The worker's heap is over its soft limit (`limits.memory_mb`): retire it. */
export const W_MEMORY = 40;

/**
 * WebSockets (`runtime/websocket/`). The real socket lives on the host; the
 * worker holds one end of a `WebSocketPair` and frames are relayed by id.
 * Host → worker: a frame or event of a relayed socket.
 */
export const H_WS = 50;
/** Worker → host: the answer to fetch event `id` is a WebSocket upgrade. */
export const W_UPGRADE = 51;
/** Worker → host: a frame or command for a relayed socket. */
export const W_WS = 52;
/** Sub-ops of {@link H_WS} / {@link W_WS}. */
export const WS_MESSAGE = 0;
export const WS_CLOSE = 1;
export const WS_ERROR = 2;
/** Worker → host: an end of a pair will be answered to a client; `owner` is a DO key or null. */
export const WS_OFFER = 3;

/** Everything a worker needs to become a tenant. Sent once, right after spawn. */
export interface InitMessage {
  tenant: string;
  /** Bundled ES module source (with an inline source map). */
  code: string;
  /** Plain values placed on `env`. */
  vars: Record<string, unknown>;
  /** Bindings placed on `env`, built by the worker-side stub registry. */
  bindings: BindingSpec[];
  /** Limits the worker enforces on itself (absent = none). */
  limits?: WorkerLimits;
  /** The egress proxy fetch and WebSocket go through (absent = dial by name after the check). */
  egressProxy?: EgressProxyAddress;
}

/** Limits enforced inside the worker (see `egress.worker.ts`, `memory/heap_sampler.worker.ts`). */
export interface WorkerLimits {
  /** Outbound fetch/connect calls per event (0 = unlimited). */
  subrequests: number;
  /** Soft heap limit in MiB (V8 heap + external buffers); 0 = none. */
  memoryMb: number;
}

export type HostMessage =
  | [typeof H_INIT, InitMessage]
  | [
    typeof H_FETCH,
    id: number,
    method: string,
    url: string,
    headers: HeaderPairs,
    body: ReadableStream<Uint8Array> | null,
    requestId: string,
  ]
  | [typeof H_RPC_RESULT, id: number, ok: boolean, value: unknown]
  | [typeof H_EVENT, id: number, kind: string, payload: unknown, requestId: string]
  | [typeof H_BATCH, HostMessage[]]
  | WsHostMessage;

/** A relayed WebSocket's frame or event, host → worker. */
export type WsHostMessage =
  | [typeof H_WS, socket: string, op: typeof WS_MESSAGE, data: string | ArrayBuffer]
  | [
    typeof H_WS,
    socket: string,
    op: typeof WS_CLOSE,
    code: number,
    reason: string,
    wasClean: boolean,
  ]
  | [typeof H_WS, socket: string, op: typeof WS_ERROR, message: string];

/** A relayed WebSocket's frame or command, worker → host. */
export type WsWorkerMessage =
  | [typeof W_WS, socket: string, op: typeof WS_OFFER, owner: string | null]
  | [typeof W_WS, socket: string, op: typeof WS_MESSAGE, data: string | ArrayBuffer]
  | [typeof W_WS, socket: string, op: typeof WS_CLOSE, code: number, reason: string];

/** A serialized error: what crosses from a worker. */
export interface WireError {
  code: string;
  message: string;
  stack?: string;
}

export type WorkerMessage =
  | [typeof W_READY]
  | [typeof W_INIT_ERROR, WireError]
  | [
    typeof W_RESPONSE,
    id: number,
    status: number,
    statusText: string,
    headers: HeaderPairs,
    inline: InlineBody,
    stream: ReadableStream<Uint8Array> | null,
    /** No waitUntil work pending: the event is settled (no W_SETTLED follows). */
    settled: boolean,
  ]
  | [typeof W_ERROR, id: number, error: WireError]
  | [typeof W_RPC, id: number, binding: string, method: string, args: unknown[]]
  | [typeof W_LOG, level: LogLevel, requestId: string | null, message: string]
  /** All `waitUntil` work of event `id` has settled. */
  | [typeof W_SETTLED, id: number]
  /** The tenant ended its worker (`Deno.exit`): it is replaced. */
  | [typeof W_FATAL, WireError]
  | [typeof W_UNCAUGHT, WireError, requestId: string | null]
  | [typeof W_EVENT_RESULT, id: number, ok: boolean, value: unknown]
  | [typeof W_BATCH, WorkerMessage[]]
  | [typeof W_BOOTED]
  /** Heap over the soft limit: `used` and `limit` in bytes. */
  | [typeof W_MEMORY, used: number, limit: number]
  /** Fetch event `id` answered 101 with a WebSocket: the host upgrades the client's request. */
  | [typeof W_UPGRADE, id: number, socket: string, headers: HeaderPairs, settled: boolean]
  | WsWorkerMessage;

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Deno's `WorkerOptions.deno.permissions`, every key spelled out. */
export interface WorkerPermissions {
  read: boolean | string[];
  write: boolean | string[];
  net: boolean | string[];
  env: boolean | string[];
  run: boolean | string[];
  ffi: boolean | string[];
  sys: boolean | string[];
  import: boolean | string[];
}
