/**
 * Runs inside every tenant worker, before and around the tenant's module.
 * Never imports host modules: only the protocol (types and constants), the
 * worker-side binding stubs, and Deno/web APIs.
 *
 * Order matters: the sandbox (console capture, Response tracking, removed
 * globals) is installed before the tenant bundle is imported, so the tenant
 * never sees the originals.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  BIG_BODY,
  H_BATCH,
  H_EVENT,
  H_FETCH,
  H_INIT,
  H_RPC_RESULT,
  H_WS,
  type HeaderPairs,
  headerPairs,
  type HostMessage,
  type InitMessage,
  type InlineBody,
  type LogLevel,
  W_BATCH,
  W_BOOTED,
  W_ERROR,
  W_EVENT_RESULT,
  W_FATAL,
  W_INIT_ERROR,
  W_LOG,
  W_MEMORY,
  W_READY,
  W_RESPONSE,
  W_RPC,
  W_SETTLED,
  W_UNCAUGHT,
  W_UPGRADE,
  type WireError,
  type WorkerMessage,
} from "./protocol.ts";
import {
  exportEnd,
  installWebSockets,
  onHostFrame,
  upgradeOf,
  upgradeResponse,
} from "./websocket/websocket_pair.worker.ts";
import { STUBS } from "./bindings/stubs.worker.ts";
import type { RpcCall } from "./bindings/types.ts";
import { type EventHandler, type EventHandlers, registerEventHandler } from "./events.worker.ts";
import { EGRESS_RPC, installEgress } from "./egress.worker.ts";
import { hardenWorker } from "./hardening.worker.ts";
import { captureStdio } from "./stdio_capture.worker.ts";
import { incomingRequest } from "./incoming_request.worker.ts";
import { type HeapSampler, startHeapSampler } from "./memory/heap_sampler.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

// ---------------------------------------------------------------- messages to the host

/**
 * Replies finished in the same turn (responses, settlements, logs) travel as
 * one W_BATCH message: under load a turn completes several events, and one
 * message costs the host far less than several. Everything else (RPC, control
 * messages) goes at once, after whatever is queued, so order is kept and a
 * call that blocks right after posting (sync `sql.exec`) is not left waiting.
 */
let outbox: WorkerMessage[] = [];
let outboxTransfer: Transferable[] = [];
let flushQueued = false;
function flush() {
  flushQueued = false;
  if (outbox.length === 0) return;
  const batch = outbox, transfer = outboxTransfer;
  outbox = [];
  outboxTransfer = [];
  self.postMessage(batch.length === 1 ? batch[0] : [W_BATCH, batch], transfer);
}
/** Sends now (after anything queued). */
const post = (msg: WorkerMessage, transfer?: Transferable[]) => {
  if (outbox.length) flush();
  self.postMessage(msg, transfer ?? []);
};
/** Queues a reply; the queue goes out when this turn's microtasks are done. */
const reply = (msg: WorkerMessage, transfer?: Transferable[]) => {
  outbox.push(msg);
  if (transfer) outboxTransfer.push(...transfer);
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flush);
  }
};
installWebSockets(post); // the global WebSocketPair

// ---------------------------------------------------------------- errors

function toWire(err: unknown): WireError {
  if (err instanceof Error) {
    const code = typeof (err as Any).code === "string" && (err as Any).code.startsWith("ERR_")
      ? (err as Any).code
      : "ERR_TENANT_EXCEPTION";
    return { code, message: `${err.name}: ${err.message}`, stack: err.stack };
  }
  return { code: "ERR_TENANT_EXCEPTION", message: `Uncaught ${String(err)}` };
}

// ---------------------------------------------------------------- request context

/** The request id of the event whose code is running, for log tagging. */
const requestContext = new AsyncLocalStorage<string>();

// ---------------------------------------------------------------- console

const inspect = (v: unknown) => typeof v === "string" ? v : Deno.inspect(v, { depth: 4 });
const print = (level: LogLevel, text: string) =>
  post([W_LOG, level, requestContext.getStore() ?? null, text]);
function capture(level: LogLevel) {
  return (...args: unknown[]) => print(level, args.map(inspect).join(" "));
}
const tenantConsole = globalThis.console as Any;
for (
  const [method, level] of [
    ["log", "info"],
    ["info", "info"],
    ["debug", "debug"],
    ["warn", "warn"],
    ["error", "error"],
    ["trace", "debug"],
  ] as const
) tenantConsole[method] = capture(level);
captureStdio(print); // the other console methods, Deno.stdout/stderr, process.stdout/stderr

// ---------------------------------------------------------------- Response tracking

/**
 * Responses built from a complete body (string or bytes) are remembered, so
 * the body crosses back inline instead of as a transferred stream. Anything
 * else (streams, blobs, fetch() results, clones) takes the streaming path.
 */
const inlineBodies = new WeakMap<Response, InlineBody>();
function inlineOf(body: unknown): InlineBody | undefined {
  if (body === null || body === undefined) return null;
  if (typeof body === "string") return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) {
    return copyView(body);
  }
  return undefined;
}
function copyView(view: ArrayBufferView): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(view.byteLength);
  out.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return out;
}
const encoder = new TextEncoder();
const NativeResponse = Response;
/** Loads the tenant's code; tenants lose it (`hardening.worker.ts`). */
const createObjectURL = URL.createObjectURL;
const TrackedResponse = new Proxy(NativeResponse, {
  construct(target, args, newTarget) {
    // `{ status: 101, webSocket }`: a WebSocket answer (websocket/websocket_pair.worker.ts)
    if (args[1]?.webSocket != null) return upgradeResponse(NativeResponse, args[0], args[1]);
    const res = Reflect.construct(target, args, newTarget) as Response;
    const inline = inlineOf(args[0]);
    if (inline !== undefined) inlineBodies.set(res, inline);
    return res;
  },
  get(target, prop, receiver) {
    if (prop === "json") {
      return (data: unknown, init?: ResponseInit) => {
        const res = NativeResponse.json(data, init);
        inlineBodies.set(res, JSON.stringify(data));
        return res;
      };
    }
    return Reflect.get(target, prop, receiver);
  },
});
Object.defineProperty(globalThis, "Response", {
  value: TrackedResponse,
  writable: true,
  configurable: true,
});

// ---------------------------------------------------------------- removed powers

// A tenant may not spawn workers of its own (host exhaustion), nor end its worker
// silently: Deno.exit reports to the host, which replaces the worker.
delete (globalThis as Any).Worker;
hardenWorker(); // process-wide and cross-tenant powers (hardening.worker.ts)
try {
  Object.defineProperty(Deno, "exit", {
    value: (code?: number) => {
      post([W_FATAL, {
        code: "ERR_TENANT_CRASHED",
        message: `Deno.exit(${code ?? 0}) called by tenant`,
      }]);
      throw new Error("Deno.exit() is not allowed in a Worky tenant");
    },
  });
} catch { /* Deno namespace sealed in this version: exit still ends only this worker */ }

// ---------------------------------------------------------------- RPC to the host

let nextRpcId = 1;
const rpcPending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
const rpc: RpcCall = (binding, method, args, transfer) =>
  new Promise((resolve, reject) => {
    const id = nextRpcId++;
    rpcPending.set(id, { resolve, reject });
    post([W_RPC, id, binding, method, args], transfer);
  });

// Every way out to the network asks the host first (egress.worker.ts); limits come with init.
const egress = installEgress(
  (host, port) => rpc(EGRESS_RPC, "check", [host, port]),
  () => requestContext.getStore(),
  (host, address, port) => rpc(EGRESS_RPC, "verify", [host, address, port]),
);
let heap: HeapSampler | undefined;

function settleRpc(id: number, ok: boolean, value: unknown) {
  const p = rpcPending.get(id);
  if (!p) return;
  rpcPending.delete(id);
  if (ok) p.resolve(value);
  else {
    const e = value as WireError;
    const err = new Error(e.message);
    (err as Any).code = e.code;
    p.reject(err);
  }
}

// ---------------------------------------------------------------- tenant state

let tenantModule: Any = null;
/** Settles when init finished; events that arrive earlier wait for it. */
let initialized: Promise<void> | null = null;
let isReady = false;
let env: Record<string, unknown> = {};
const handlers: EventHandlers = {};

async function init(msg: InitMessage) {
  try {
    env = {};
    egress.setSubrequestLimit(msg.limits?.subrequests ?? 0);
    egress.useProxy(msg.egressProxy); // before the tenant loads: its fetch is pinned from the start
    if (msg.limits?.memoryMb) {
      heap = startHeapSampler(msg.limits.memoryMb, (used, limit) => post([W_MEMORY, used, limit]));
    }
    for (const [k, v] of Object.entries(msg.vars)) env[k] = v;
    for (const spec of msg.bindings) {
      const factory = STUBS[spec.kind];
      if (!factory) throw new Error(`unknown binding kind "${spec.kind}" for env.${spec.name}`);
      env[spec.name] = factory(spec, rpc);
    }
    const url = createObjectURL(new Blob([msg.code], { type: "text/javascript" }));
    try {
      tenantModule = await import(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const handler = tenantModule.default;
    if (!handler || (typeof handler !== "object" && typeof handler !== "function")) {
      throw new Error(
        "the module has no default export; export default { fetch(request, env, ctx) { … } }",
      );
    }
    registerEventHandler(handlers, tenantModule, env);
    isReady = true;
    post([W_READY]);
  } catch (err) {
    post([W_INIT_ERROR, toWire(err)]);
  }
}

// ---------------------------------------------------------------- execution context

/** Tracks `waitUntil` work of one event and reports when all of it settled. */
function makeContext(id: number, requestId: string) {
  let pending = 0;
  let responded = false;
  /** The host was told the event settled (by W_SETTLED or inside the response). */
  let reported = false;
  let finished = false;
  const settle = () => {
    if (!responded || pending !== 0 || finished) return;
    finished = true;
    if (!reported) {
      reported = true;
      reply([W_SETTLED, id]);
    }
    egress.endEvent(requestId);
    heap?.afterEvent();
  };
  const ctx = {
    waitUntil(promise: Promise<unknown>) {
      pending++;
      Promise.resolve(promise).catch((err) => {
        post([W_LOG, "error", requestId, `waitUntil: ${toWire(err).stack ?? err}`]);
      }).finally(() => {
        pending--;
        settle();
      });
    },
    passThroughOnException() {},
    props: {},
  };
  const done = () => {
    responded = true;
    settle();
  };
  /**
   * Marks the response as sent. True when no waitUntil work is pending: the
   * response message then reports the event settled itself (no extra message).
   */
  const respond = (): boolean => {
    responded = true;
    if (pending > 0) return false;
    reported = true;
    return true;
  };
  return { ctx, done, respond };
}

// ---------------------------------------------------------------- fetch

async function onFetch(
  id: number,
  method: string,
  url: string,
  headers: HeaderPairs,
  body: ReadableStream<Uint8Array> | null,
  requestId: string,
) {
  const { ctx, done, respond } = makeContext(id, requestId);
  try {
    if (!isReady) await initialized;
    const fetchHandler = handlers.fetch;
    if (!fetchHandler) {
      throw Object.assign(new Error("the module's default export has no fetch() handler"), {
        code: "ERR_BUNDLE_INVALID",
      });
    }
    const request = incomingRequest(url, method, headers, body); // the real one only when needed
    const res: unknown = await requestContext.run(requestId, () => fetchHandler(request, env, ctx));
    if (!(res instanceof NativeResponse)) {
      throw new TypeError(
        `fetch() must return a Response, got ${res === null ? "null" : typeof res}`,
      );
    }
    const outHeaders = headerPairs(res.headers);
    if (res.status === 101) {
      const ws = upgradeOf(res);
      if (!ws) {
        throw new TypeError(
          "fetch() answered status 101 without a webSocket; " +
            "use new Response(null, { status: 101, webSocket: client })",
        );
      }
      post([W_UPGRADE, id, exportEnd(ws, null), outHeaders, respond()]);
      return;
    }
    const inline = inlineBodies.get(res);
    if (inline !== undefined && !res.bodyUsed) {
      const body = typeof inline === "string" && inline.length >= BIG_BODY
        ? encoder.encode(inline)
        : inline;
      const moved = body instanceof Uint8Array && body.byteLength >= BIG_BODY;
      if (moved) inlineBodies.delete(res); // its bytes leave; answering it again streams them
      reply(
        [W_RESPONSE, id, res.status, res.statusText, outHeaders, body, null, respond()],
        moved ? [(body as Uint8Array<ArrayBuffer>).buffer] : undefined,
      );
    } else if (res.body) {
      const settled = respond();
      reply([W_RESPONSE, id, res.status, res.statusText, outHeaders, null, res.body, settled], [
        res.body,
      ]);
    } else {
      reply([W_RESPONSE, id, res.status, res.statusText, outHeaders, null, null, respond()]);
    }
  } catch (err) {
    reply([W_ERROR, id, toWire(err)]);
  } finally {
    done();
  }
}

// ---------------------------------------------------------------- other events

async function onEvent(id: number, kind: string, payload: unknown, requestId: string) {
  const { ctx, done } = makeContext(id, requestId);
  try {
    if (!isReady) await initialized;
    const handler = handlers[kind] as EventHandler | undefined;
    if (!handler) {
      throw Object.assign(new Error(`the module does not handle "${kind}" events`), {
        code: "ERR_BUNDLE_INVALID",
      });
    }
    const value = await requestContext.run(requestId, () => handler(payload, env, ctx));
    reply([W_EVENT_RESULT, id, true, value]);
  } catch (err) {
    reply([W_EVENT_RESULT, id, false, toWire(err)]);
  } finally {
    done();
  }
}

// ---------------------------------------------------------------- wiring

// As on Workers: an uncaught error or unhandled rejection is logged (with the request it came
// from, when known) and the worker serves on; replacing it would cost a respawn, which blocks the
// host's thread, for every careless promise.
const uncaught = (prefix: string, err: unknown) => {
  const wire = toWire(err);
  wire.stack = `${prefix}${wire.stack ?? wire.message}`;
  post([W_UNCAUGHT, wire, requestContext.getStore() ?? null]);
};
self.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  uncaught("Uncaught (in promise) ", e.reason);
});
self.addEventListener("error", (e) => {
  e.preventDefault();
  uncaught("Uncaught ", e.error ?? e.message);
});

function dispatch(m: HostMessage) {
  switch (m[0]) {
    case H_BATCH:
      for (const one of m[1]) dispatch(one);
      break;
    case H_FETCH:
      onFetch(m[1], m[2], m[3], m[4], m[5], m[6]);
      break;
    case H_RPC_RESULT:
      settleRpc(m[1], m[2], m[3]);
      break;
    case H_EVENT:
      onEvent(m[1], m[2], m[3], m[4]);
      break;
    case H_WS:
      onHostFrame(m);
      break;
    case H_INIT:
      initialized = init(m[1]);
      break;
  }
}

self.onmessage = (e: MessageEvent<HostMessage>) => dispatch(e.data);
post([W_BOOTED]);
