/**
 * WebSockets inside a tenant worker, Cloudflare style: the global
 * `WebSocketPair` makes two linked ends; the tenant `accept()`s the server end
 * and answers `new Response(null, { status: 101, webSocket: client })`.
 *
 * A WebSocket can't cross to the host, so the client end is **exported**: it
 * gets a socket id, the host upgrades the client's real request and relays
 * frames by that id (`runtime/websocket/relay.ts`). What the server end sends
 * goes out as `W_WS` messages; what the real client sends arrives as `H_WS`
 * messages and is delivered to the server end, as if the client end had sent
 * it. An end returned by a Durable Object's `fetch` reaches the calling worker
 * as a **remote** end (only its id): returning it in a Response upgrades the
 * client to the object's worker.
 *
 * Listener exceptions are logged (`console.error`), never uncaught: one bad
 * message handler does not take the worker down.
 *
 * Worker code.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import {
  W_WS,
  type WorkerMessage,
  WS_CLOSE,
  WS_ERROR,
  WS_MESSAGE,
  WS_OFFER,
  type WsHostMessage,
} from "../protocol.ts";
import type {
  WebSocketData,
  WorkyCloseEvent,
  WorkyErrorEvent,
  WorkyMessageEvent,
  WorkyResponseInit,
  WorkyWebSocket,
  WorkyWebSocketEventMap,
} from "./types.ts";

// deno-lint-ignore no-explicit-any
type Any = any;
type Post = (msg: WorkerMessage, transfer?: Transferable[]) => void;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** Close codes that only describe a connection, never sent in a close frame. */
const RESERVED_CODES = new Set([1004, 1005, 1006, 1015]);
/** Cloudflare's limit on a serialized attachment. */
const MAX_ATTACHMENT_BYTES = 2048;

/** Handlers that replace event dispatch for a socket accepted by a Durable Object. */
export interface SocketHooks {
  message(ws: WebSocketEnd, data: WebSocketData): void;
  close(ws: WebSocketEnd, code: number, reason: string, wasClean: boolean): void;
  error(ws: WebSocketEnd, error: Error): void;
}

type Delivery =
  | ["message", WebSocketData]
  | ["close", number, string, boolean]
  | ["error", string];

interface State {
  peer: WebSocketEnd | null;
  /** This end is held by the host as a real socket, under this id. */
  exportedId: string | null;
  /** This end stands for an end another worker exported under this id. */
  remoteId: string | null;
  accepted: boolean;
  hooks: SocketHooks | null;
  /** Events that arrived before `accept()`. */
  queue: Delivery[];
  listeners: { [K in keyof WorkyWebSocketEventMap]: Set<(e: Any) => unknown> };
  attachment: Uint8Array | null;
  readyState: number;
  /** A close event was delivered or queued (there is only one). */
  closeSeen: boolean;
}

let post: Post = () => {
  throw new Error("WebSockets are not installed in this worker");
};
const states = new WeakMap<WebSocketEnd, State>();
/** Exported ends by socket id. */
const exported = new Map<string, WebSocketEnd>();
/** Upgrade responses → the end they carry. */
const upgrades = new WeakMap<Response, WebSocketEnd>();
const CONSTRUCT = Symbol("construct");

function stateOf(ws: WebSocketEnd): State {
  const st = states.get(ws);
  if (!st) throw new TypeError("Illegal invocation: not a WebSocket of a WebSocketPair");
  return st;
}

function report(what: string, err: unknown) {
  console.error(`WebSocket ${what} listener threw:`, err);
}

/**
 * One end of a {@link WebSocketPair}.
 *
 * @example
 * ```ts
 * import { WebSocketPair } from "./websocket_pair.worker.ts";
 * const { 0: client, 1: server } = new WebSocketPair();
 * server.accept();
 * client.accept();
 * client.addEventListener("message", (e) => console.log(e.data)); // "hi"
 * server.send("hi");
 * ```
 */
export class WebSocketEnd implements WorkyWebSocket {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly url: string | null = null;
  readonly protocol: string | null = null;
  readonly extensions: string | null = null;
  onmessage: ((event: WorkyMessageEvent) => unknown) | null = null;
  onclose: ((event: WorkyCloseEvent) => unknown) | null = null;
  onerror: ((event: WorkyErrorEvent) => unknown) | null = null;

  constructor(token?: symbol) {
    if (token !== CONSTRUCT) throw new TypeError("Illegal constructor: use new WebSocketPair()");
    states.set(this, {
      peer: null,
      exportedId: null,
      remoteId: null,
      accepted: false,
      hooks: null,
      queue: [],
      listeners: { message: new Set(), close: new Set(), error: new Set() },
      attachment: null,
      readyState: OPEN,
      closeSeen: false,
    });
  }

  get readyState(): number {
    return stateOf(this).readyState;
  }

  accept(): void {
    const st = usable(this, "accept()");
    if (st.exportedId) {
      throw new TypeError(
        "accept(): this end was returned in a Response and belongs to the client; accept the other end",
      );
    }
    if (st.accepted) return;
    st.accepted = true;
    flush(this, st);
  }

  send(message: string | ArrayBuffer | ArrayBufferView): void {
    const st = usable(this, "send()");
    if (!st.accepted) {
      throw new TypeError("send(): call accept() on this WebSocket before sending messages");
    }
    if (st.readyState !== OPEN) throw new TypeError("send(): the WebSocket is closing or closed");
    let data: WebSocketData;
    if (typeof message === "string") data = message;
    else if (message instanceof ArrayBuffer) data = message.slice(0);
    else if (ArrayBuffer.isView(message)) {
      data = new Uint8Array(message.buffer, message.byteOffset, message.byteLength).slice().buffer;
    } else data = String(message);
    const peer = st.peer!;
    const ps = stateOf(peer);
    if (ps.exportedId) {
      if (typeof data === "string") post([W_WS, ps.exportedId, WS_MESSAGE, data]);
      else post([W_WS, ps.exportedId, WS_MESSAGE, data], [data]);
    } else deliver(peer, ["message", data]);
  }

  close(code?: number, reason?: string): void {
    usable(this, "close()");
    if (
      code !== undefined &&
      (!Number.isInteger(code) || code < 1000 || code > 4999 || RESERVED_CODES.has(code))
    ) {
      throw new TypeError(
        `close(): code ${code} is invalid; use 1000–4999 except 1004, 1005, 1006 and 1015`,
      );
    }
    if (reason !== undefined && new TextEncoder().encode(reason).length > 123) {
      throw new TypeError("close(): reason is longer than 123 bytes");
    }
    closeEnd(this, code ?? 1000, reason ?? "");
  }

  addEventListener<K extends keyof WorkyWebSocketEventMap>(
    type: K,
    listener: (event: WorkyWebSocketEventMap[K]) => unknown,
  ): void {
    stateOf(this).listeners[type]?.add(listener);
  }

  removeEventListener<K extends keyof WorkyWebSocketEventMap>(
    type: K,
    listener: (event: WorkyWebSocketEventMap[K]) => unknown,
  ): void {
    stateOf(this).listeners[type]?.delete(listener);
  }

  serializeAttachment(value: unknown): void {
    const bytes = serialize(value);
    if (bytes.length > MAX_ATTACHMENT_BYTES) {
      throw new TypeError(
        `serializeAttachment(): ${bytes.length} bytes serialized, over the limit of ${MAX_ATTACHMENT_BYTES}`,
      );
    }
    stateOf(this).attachment = new Uint8Array(bytes);
  }

  deserializeAttachment<T = unknown>(): T | null {
    const bytes = stateOf(this).attachment;
    return bytes ? deserialize(bytes) as T : null;
  }
}

function usable(ws: WebSocketEnd, what: string): State {
  const st = stateOf(ws);
  if (st.remoteId) {
    throw new TypeError(
      `${what}: this WebSocket belongs to a Durable Object; return it in a Response ` +
        "(status 101) to connect the client to it",
    );
  }
  return st;
}

/**
 * A pair of linked WebSocket ends (`0` is the client end, `1` the server end).
 *
 * @example
 * ```ts
 * import { WebSocketPair } from "./websocket_pair.worker.ts";
 * const { 0: client, 1: server } = new WebSocketPair();
 * server.accept();
 * const res = new Response(null, { status: 101, webSocket: client } as ResponseInit);
 * ```
 */
export class WebSocketPair {
  0: WebSocketEnd;
  1: WebSocketEnd;
  constructor() {
    const client = new WebSocketEnd(CONSTRUCT);
    const server = new WebSocketEnd(CONSTRUCT);
    stateOf(client).peer = server;
    stateOf(server).peer = client;
    this[0] = client;
    this[1] = server;
  }
}

// ------------------------------------------------------------------ delivery

function deliver(ws: WebSocketEnd, d: Delivery) {
  const st = stateOf(ws);
  if (d[0] === "close") {
    if (st.closeSeen) return;
    st.closeSeen = true;
    st.readyState = CLOSED;
  }
  if (!st.accepted) {
    st.queue.push(d);
    return;
  }
  dispatch(ws, st, d);
}

function flush(ws: WebSocketEnd, st: State) {
  const queued = st.queue;
  st.queue = [];
  for (const d of queued) dispatch(ws, st, d);
}

function dispatch(ws: WebSocketEnd, st: State, d: Delivery) {
  if (st.hooks) {
    if (d[0] === "message") st.hooks.message(ws, d[1]);
    else if (d[0] === "close") st.hooks.close(ws, d[1], d[2], d[3]);
    else st.hooks.error(ws, new Error(d[1]));
    return;
  }
  let event: Any;
  if (d[0] === "message") event = { type: "message", data: d[1], target: ws };
  else if (d[0] === "close") {
    event = { type: "close", code: d[1], reason: d[2], wasClean: d[3], target: ws };
  } else event = { type: "error", message: d[1], error: new Error(d[1]), target: ws };
  const type = d[0];
  const handler = type === "message" ? ws.onmessage : type === "close" ? ws.onclose : ws.onerror;
  for (const fn of [...st.listeners[type], ...(handler ? [handler] : [])]) {
    try {
      const r = (fn as (e: Any) => unknown).call(ws, event);
      if (r && typeof (r as Promise<unknown>).then === "function") {
        (r as Promise<unknown>).then(undefined, (err) => report(type, err));
      }
    } catch (err) {
      report(type, err);
    }
  }
}

/** Closes an end with any code (the runtime's own closes: 1001, 1011, …). */
export function closeEnd(ws: WebSocketEnd, code: number, reason: string): void {
  const st = stateOf(ws);
  if (st.remoteId || st.readyState === CLOSING || st.readyState === CLOSED) return;
  st.readyState = CLOSING;
  const peer = st.peer!;
  const ps = stateOf(peer);
  if (ps.exportedId) {
    // the host closes the real socket; its close event comes back and closes this end
    post([W_WS, ps.exportedId, WS_CLOSE, code, reason]);
  } else {
    deliver(peer, ["close", code, reason, true]);
    deliver(ws, ["close", code, reason, true]);
  }
}

// ------------------------------------------------------------------ the host side of an end

/**
 * Hands an end to a client: gives it a socket id and tells the host (`WS_OFFER`),
 * so the host can relay a real socket to it. `owner` names the Durable Object
 * that holds the socket (`<class>/<id>`), or null. A remote end gives back its id.
 */
export function exportEnd(ws: unknown, owner: string | null): string {
  if (!(ws instanceof WebSocketEnd)) {
    throw new TypeError("Response: webSocket must be an end of a WebSocketPair");
  }
  const st = stateOf(ws);
  if (st.remoteId) return st.remoteId;
  if (st.exportedId) throw new TypeError("Response: this WebSocket was already returned once");
  if (st.accepted) {
    throw new TypeError(
      "Response: the webSocket of a 101 answer must be the client end; this end was accept()ed " +
        "(return the other end of the pair)",
    );
  }
  const id = crypto.randomUUID();
  st.exportedId = id;
  exported.set(id, ws);
  post([W_WS, id, WS_OFFER, owner]);
  // what the server end sent before the answer goes out now, in order
  for (const d of st.queue) {
    if (d[0] === "message") {
      if (typeof d[1] === "string") post([W_WS, id, WS_MESSAGE, d[1]]);
      else post([W_WS, id, WS_MESSAGE, d[1]], [d[1]]);
    } else if (d[0] === "close") post([W_WS, id, WS_CLOSE, d[1], d[2]]);
  }
  st.queue = [];
  return id;
}

/** An end standing for one another worker exported (a Durable Object's answer). */
export function remoteEnd(id: string): WebSocketEnd {
  const ws = new WebSocketEnd(CONSTRUCT);
  stateOf(ws).remoteId = id;
  return ws;
}

/** Lets a frame or event of the real socket in (host → worker). */
export function onHostFrame(m: WsHostMessage): void {
  const end = exported.get(m[1]);
  if (!end) return;
  const server = stateOf(end).peer!;
  switch (m[2]) {
    case WS_MESSAGE:
      deliver(server, ["message", m[3]]);
      return;
    case WS_CLOSE:
      exported.delete(m[1]);
      stateOf(end).readyState = CLOSED;
      deliver(server, ["close", m[3], m[4], m[5]]);
      return;
    case WS_ERROR:
      deliver(server, ["error", m[3]]);
      return;
  }
}

/**
 * Accepts an end for a Durable Object: its events go to `hooks` instead of
 * listeners. Throws if the end can't be accepted (client end, remote, already accepted).
 */
export function hookEnd(ws: unknown, hooks: SocketHooks): WebSocketEnd {
  if (!(ws instanceof WebSocketEnd)) {
    throw new TypeError("acceptWebSocket(): expected the server end of a WebSocketPair");
  }
  const st = usable(ws, "acceptWebSocket()");
  if (st.exportedId) {
    throw new TypeError(
      "acceptWebSocket(): this end was returned in a Response; accept the other end of the pair",
    );
  }
  if (st.accepted) {
    throw new TypeError("acceptWebSocket(): this WebSocket was already accepted");
  }
  st.hooks = hooks;
  st.accepted = true;
  flush(ws, st);
  return ws;
}

// ------------------------------------------------------------------ responses

/**
 * Builds the Response of `new Response(null, { status: 101, webSocket })`
 * (called by the bootstrap's Response wrapper when `init.webSocket` is set).
 */
export function upgradeResponse(
  Native: typeof Response,
  body: unknown,
  init: WorkyResponseInit,
): Response {
  const ws = init.webSocket;
  if (!(ws instanceof WebSocketEnd)) {
    throw new TypeError("Response: webSocket must be an end of a WebSocketPair");
  }
  if (init.status !== 101) {
    throw new TypeError(`Response: a webSocket answer needs status 101, got ${init.status}`);
  }
  if (body !== null && body !== undefined) {
    throw new TypeError("Response: a 101 answer with a webSocket has no body");
  }
  const { webSocket: _, ...rest } = init;
  let res: Response;
  try {
    res = new Native(null, rest);
  } catch {
    // runtimes whose Response rejects 101: keep the status on the object
    res = new Native(null, { ...rest, status: 200 });
    Object.defineProperty(res, "status", { value: 101 });
  }
  Object.defineProperty(res, "webSocket", { value: ws, enumerable: true });
  upgrades.set(res, ws);
  return res;
}

/** The WebSocket end of an upgrade Response, if it is one. */
export function upgradeOf(res: Response): WebSocketEnd | undefined {
  return upgrades.get(res);
}

/** Installs `WebSocketPair` on the worker's global and the channel to the host. */
export function installWebSockets(postToHost: Post): void {
  post = postToHost;
  Object.defineProperty(globalThis, "WebSocketPair", {
    value: WebSocketPair,
    writable: true,
    configurable: true,
  });
}
