/**
 * The host side of tenant WebSockets. A WebSocket can't be transferred to a
 * worker, so the host keeps the real socket and relays frames by socket id:
 *
 * 1. The worker exports the client end of a `WebSocketPair` (`WS_OFFER`, with
 *    the Durable Object holding it, if any); the handle of that worker owns the
 *    id from then on ({@link WorkerSockets}; a process-wide map finds the owner
 *    by id, because a Durable Object's socket may be answered by another worker).
 * 2. The fetch event is answered with `W_UPGRADE` instead of a Response (Deno
 *    can't build a 101 Response that carries a socket): {@link acceptUpgrade}
 *    calls `Deno.upgradeWebSocket` on the client's original request and
 *    attaches the real socket to the owner; the client gets Deno's 101.
 * 3. Frames the worker sends before the socket opens are queued, then flushed
 *    in order. Client frames, closes and errors go to the owner's worker
 *    (`H_WS`). A close from either side closes the other; the owner's worker
 *    dying closes its client sockets with 1011.
 *
 * @module
 */
import { WorkyError } from "../errors.ts";
import {
  H_WS,
  type HeaderPairs,
  type HostMessage,
  WS_CLOSE,
  WS_ERROR,
  WS_MESSAGE,
  WS_OFFER,
  type WsWorkerMessage,
} from "../protocol.ts";

type Data = string | ArrayBuffer;

interface Relayed {
  /** The Durable Object holding the socket (`<class>/<id>`), or null. */
  owner: string | null;
  socket?: WebSocket;
  /** Frames (and a close) from the worker before the real socket opened. */
  queue: Data[];
  close?: [number, string];
}

/** How long an offered end may wait for its client's upgrade. */
const UNCLAIMED_MS = 30_000;

/** Socket id → the worker sockets that own it, across the process. */
const owners = new Map<string, WorkerSockets>();

/**
 * The relayed sockets of one worker (one per `WorkerHandle`).
 *
 * @example
 * ```ts ignore
 * const sockets = new WorkerSockets((msg, transfer) => worker.postMessage(msg, transfer ?? []));
 * sockets.fromWorker([W_WS, id, WS_OFFER, null]);
 * sockets.attach(id, Deno.upgradeWebSocket(request).socket);
 * ```
 */
export class WorkerSockets {
  readonly #post: (msg: HostMessage, transfer?: Transferable[]) => void;
  readonly #sockets = new Map<string, Relayed>();
  #dead = false;

  constructor(post: (msg: HostMessage, transfer?: Transferable[]) => void) {
    this.#post = post;
  }

  /** Sockets offered or open (a worker holding any is not retired for idleness). */
  get size(): number {
    return this.#sockets.size;
  }

  /** Open sockets held by the Durable Object `owner` (`<class>/<id>`). */
  countOwnedBy(owner: string): number {
    let n = 0;
    for (const r of this.#sockets.values()) if (r.owner === owner) n++;
    return n;
  }

  /** A `W_WS` message from the worker. */
  fromWorker(m: WsWorkerMessage): void {
    const id = m[1];
    if (m[2] === WS_OFFER) {
      if (this.#dead) return;
      this.#sockets.set(id, { owner: m[3], queue: [] });
      owners.set(id, this);
      // an end offered but never answered to a client (a dropped 101) must not pin its worker
      const timer = setTimeout(() => {
        if (!this.#sockets.get(id)?.socket) this.abort(id, "never answered to a client");
      }, UNCLAIMED_MS);
      Deno.unrefTimer(timer);
      return;
    }
    const r = this.#sockets.get(id);
    if (!r) return; // closed meanwhile
    const s = r.socket;
    if (m[2] === WS_MESSAGE) {
      if (s?.readyState === WebSocket.OPEN) s.send(m[3]);
      else if (!r.close) r.queue.push(m[3]);
    } else if (m[2] === WS_CLOSE) {
      if (s?.readyState === WebSocket.OPEN) closeSocket(s, m[3], m[4]);
      else r.close ??= [m[3], m[4]];
    }
  }

  /** Relays a real socket to the worker's end `id`. */
  attach(id: string, socket: WebSocket): void {
    const r = this.#sockets.get(id);
    if (!r || this.#dead) {
      socket.onopen = () => socket.close(1011, "the worker holding this WebSocket is gone");
      return;
    }
    r.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      for (const data of r.queue) socket.send(data);
      r.queue = [];
      if (r.close) closeSocket(socket, r.close[0], r.close[1]);
    };
    socket.onmessage = (e: MessageEvent<Data>) => {
      const data = e.data;
      if (typeof data === "string") this.#send([H_WS, id, WS_MESSAGE, data]);
      else this.#send([H_WS, id, WS_MESSAGE, data], [data]);
    };
    socket.onerror = (e) => {
      const message = (e as ErrorEvent).message || "WebSocket error";
      this.#send([H_WS, id, WS_ERROR, message]);
    };
    socket.onclose = (e) => {
      this.#forget(id);
      this.#send([H_WS, id, WS_CLOSE, e.code, e.reason, e.wasClean]);
    };
  }

  /** The upgrade failed: the worker's end hears a close (1006) with `reason`. */
  abort(id: string, reason: string): void {
    if (!this.#sockets.has(id)) return;
    this.#forget(id);
    this.#send([H_WS, id, WS_CLOSE, 1006, reason.slice(0, 123), false]);
  }

  /** The worker died: every client socket closes with `code` (1011). */
  closeAll(code: number, reason: string): void {
    this.#dead = true;
    const why = reason.length > 120 ? reason.slice(0, 120) + "…" : reason;
    for (const [id, r] of this.#sockets) {
      this.#forget(id);
      const s = r.socket;
      if (!s) continue;
      if (s.readyState === WebSocket.OPEN) closeSocket(s, code, why);
      else if (s.readyState === WebSocket.CONNECTING) s.onopen = () => closeSocket(s, code, why);
    }
  }

  #forget(id: string) {
    this.#sockets.delete(id);
    if (owners.get(id) === this) owners.delete(id);
  }

  #send(msg: HostMessage, transfer?: Transferable[]) {
    if (!this.#dead) this.#post(msg, transfer);
  }
}

/** Closes a real socket; a code Deno refuses to send becomes a plain close. */
export function closeSocket(socket: WebSocket, code: number, reason: string) {
  try {
    socket.close(code, reason);
  } catch {
    socket.close();
  }
}

/** Response headers Deno's upgrade sets itself. */
const HANDSHAKE = new Set([
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/**
 * Upgrades the client's request for socket `id` (answered by tenant `tenant`)
 * and returns the 101 Response to send. Throws a `WorkyError` naming the
 * problem when the request is not a WebSocket upgrade or the socket is gone.
 *
 * @example
 * ```ts ignore
 * // in WorkerHandle, on [W_UPGRADE, eventId, socketId, headers]:
 * pending.resolve(acceptUpgrade(pending.request, socketId, headers, "chat"));
 * ```
 */
export function acceptUpgrade(
  request: Request | undefined,
  id: string,
  headers: HeaderPairs,
  tenant: string,
): Response {
  const owner = owners.get(id);
  if (!owner) {
    throw new WorkyError(
      "ERR_TENANT_EXCEPTION",
      `tenant "${tenant}" answered with a WebSocket that is already closed or gone`,
    );
  }
  if (!request) {
    owner.abort(id, "no client request to upgrade");
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `tenant "${tenant}" answered with a WebSocket (status 101), but this caller can't upgrade`,
    );
  }
  let upgraded: { socket: WebSocket; response: Response };
  try {
    const protocol = headers.find(([k]) => k.toLowerCase() === "sec-websocket-protocol")?.[1];
    upgraded = Deno.upgradeWebSocket(request, protocol ? { protocol } : undefined);
  } catch (err) {
    owner.abort(id, "the client's request is not a WebSocket upgrade");
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `tenant "${tenant}" answered ${request.method} ${request.url} with a WebSocket (status 101), ` +
        `but the request is not a WebSocket upgrade: ${(err as Error).message}`,
    );
  }
  for (const [k, v] of headers) {
    if (HANDSHAKE.has(k.toLowerCase())) continue;
    try {
      upgraded.response.headers.append(k, v);
    } catch { /* immutable in this Deno: the handshake headers are what matter */ }
  }
  owner.attach(id, upgraded.socket);
  return upgraded.response;
}
