/**
 * Inside a tenant worker: guards every way out to the network. Installed by
 * the bootstrap before the tenant module loads; the original functions live
 * only in this module's closure, so tenant code cannot reach them.
 *
 * - `fetch` asks the host (`check(host, port)` over RPC; the host resolves the
 *   name and refuses loopback/private/link-local/metadata addresses and the
 *   Worky host itself) before every hop; redirects are followed here, hop by
 *   hop, so a redirect to a private address is refused too. Each call counts
 *   against the event's subrequest limit.
 * - `Deno.connect` / `Deno.connectTls` / `WebSocket` are checked the same way.
 * - `Deno.listen*` / `Deno.serve`: a tenant answers through its `fetch`
 *   handler; it never opens listening sockets on the host.
 * - `Deno.createHttpClient` with a `proxy`: refused (the proxy would resolve
 *   and dial on the tenant's behalf, past the check).
 *
 * Imports nothing but web/Deno APIs.
 */

import { guardNodeNet } from "./egress_node.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** Asks the host whether `host:port` may be dialled; rejects with its reason. */
export type EgressCheck = (host: string, port: number) => Promise<unknown>;

/** What the bootstrap gets back. */
export interface EgressGuard {
  /** Sets the per-event subrequest limit (0 = unlimited). */
  setSubrequestLimit(n: number): void;
  /** Forgets the subrequest count of a finished event. */
  endEvent(eventKey: string): void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_HOPS = 20;

function defaultPort(url: URL): number {
  if (url.port) return Number(url.port);
  return url.protocol === "https:" || url.protocol === "wss:" ? 443 : 80;
}

function denied(message: string): Error {
  const err = new TypeError(message);
  (err as Any).code = "ERR_PERMISSION_DENIED";
  return err;
}

/**
 * Replaces the network APIs of this worker with checked ones.
 *
 * @example
 * ```ts ignore
 * const guard = installEgress((host, port) => rpc("worky:egress", "check", [host, port]), () => ctx.getStore());
 * guard.setSubrequestLimit(50);
 * ```
 */
export function installEgress(
  check: EgressCheck,
  currentEvent: () => string | undefined,
): EgressGuard {
  const g = globalThis as Any;
  const D = Deno as Any;
  const origFetch: typeof fetch = g.fetch.bind(g);
  const NativeRequest = g.Request as typeof Request;
  const NativeURL = URL;
  const origConnect = D.connect?.bind(D);
  const origConnectTls = D.connectTls?.bind(D);
  const origCreateHttpClient = D.createHttpClient?.bind(D);
  const NativeWebSocket = g.WebSocket as typeof WebSocket | undefined;
  let limit = 0;
  const counts = new Map<string, number>();

  const count = () => {
    if (limit <= 0) return;
    const key = currentEvent();
    if (key === undefined) return;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    if (n > limit) {
      const err = new Error(`subrequest limit exceeded: at most ${limit} per event`);
      (err as Any).code = "ERR_RATE_LIMITED";
      throw err;
    }
  };

  const checkUrl = async (url: URL) => {
    if (url.protocol === "http:" || url.protocol === "https:") {
      await check(url.hostname, defaultPort(url));
    } else if (url.protocol !== "data:" && url.protocol !== "blob:") {
      throw denied(`fetch of ${url.protocol} URLs is not allowed`);
    }
  };

  async function guardedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    count();
    const client = (init as Any)?.client;
    let req = new NativeRequest(input, init);
    const follow = req.redirect === "follow";
    for (let hop = 0;; hop++) {
      const url = new NativeURL(req.url);
      try {
        await checkUrl(url);
      } catch (err) {
        throw denied(`fetch ${url.origin}: ${(err as Error)?.message ?? err}`);
      }
      const replay = follow && req.body ? req.clone() : undefined;
      const res = await origFetch(
        req,
        { redirect: follow ? "manual" : req.redirect, client } as Any,
      );
      const location = res.headers.get("location");
      if (!follow || !REDIRECTS.has(res.status) || location === null) return res;
      if (hop >= MAX_HOPS) throw new TypeError(`fetch ${req.url}: more than ${MAX_HOPS} redirects`);
      await res.body?.cancel();
      const next = new NativeURL(location, req.url);
      let method = req.method;
      let body: ReadableStream | null = replay?.body ?? null;
      const headers = new Headers(req.headers);
      if (
        (res.status === 303 && method !== "GET" && method !== "HEAD") ||
        ((res.status === 301 || res.status === 302) && method === "POST")
      ) {
        method = "GET";
        body = null;
        for (
          const h of ["content-type", "content-length", "content-encoding", "content-language"]
        ) {
          headers.delete(h);
        }
      }
      if (next.origin !== url.origin) {
        headers.delete("authorization");
        headers.delete("cookie");
      }
      req = new NativeRequest(next, {
        method,
        headers,
        body,
        redirect: "follow",
        signal: req.signal,
        // @ts-ignore: duplex is needed for streaming bodies
        duplex: body ? "half" : undefined,
      });
    }
  }
  g.fetch = guardedFetch;

  const wrapConnect = (orig: Any, name: string) =>
    orig &&
    (async (options: Any) => {
      const transport = options?.transport ?? "tcp";
      if (transport === "tcp") {
        count();
        const host = options?.hostname ?? "127.0.0.1";
        try {
          await check(host, Number(options?.port));
        } catch (err) {
          throw denied(`Deno.${name} ${host}:${options?.port}: ${(err as Error)?.message ?? err}`);
        }
      }
      return await orig(options);
    });
  D.connect = wrapConnect(origConnect, "connect");
  D.connectTls = wrapConnect(origConnectTls, "connectTls");

  const noListen = (name: string) => () => {
    throw denied(`Deno.${name}() is not available to Worky tenants: answer through fetch()`);
  };
  for (const name of ["listen", "listenTls", "listenDatagram", "serve", "connectQuic"]) {
    if (name in D) D[name] = noListen(name);
  }
  if (origCreateHttpClient) {
    D.createHttpClient = (options: Any) => {
      if (options?.proxy) {
        throw denied("Deno.createHttpClient({ proxy }) is not available to Worky tenants");
      }
      return origCreateHttpClient(options);
    };
  }
  if (NativeWebSocket) g.WebSocket = guardedWebSocket(NativeWebSocket, check, count);
  guardNodeNet(check, count, denied);

  return {
    setSubrequestLimit(n) {
      limit = n;
    },
    endEvent(key) {
      if (counts.size !== 0) counts.delete(key);
    },
  };
}

/**
 * A WebSocket whose connection opens only after the host allowed its
 * address. It forwards the real socket's events and methods; until the check
 * passes it is CONNECTING and buffers nothing (send() throws, like a real one).
 */
function guardedWebSocket(
  Native: typeof WebSocket,
  check: EgressCheck,
  count: () => void,
): typeof WebSocket {
  class GuardedWebSocket extends EventTarget {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSING = 2;
    static readonly CLOSED = 3;
    readonly CONNECTING = 0;
    readonly OPEN = 1;
    readonly CLOSING = 2;
    readonly CLOSED = 3;
    readonly url: string;
    onopen: ((e: Event) => void) | null = null;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onerror: ((e: Event) => void) | null = null;
    onclose: ((e: CloseEvent) => void) | null = null;
    #ws: WebSocket | undefined;
    #state = 0;
    #binaryType: BinaryType = "blob";

    constructor(url: string | URL, protocols?: string | string[]) {
      super();
      const u = new URL(url);
      if (u.protocol === "http:") u.protocol = "ws:";
      if (u.protocol === "https:") u.protocol = "wss:";
      if (u.protocol !== "ws:" && u.protocol !== "wss:") {
        throw new DOMException(`"${u.href}" is not a ws: or wss: URL`, "SyntaxError");
      }
      count();
      this.url = u.href;
      check(u.hostname, defaultPort(u)).then(() => {
        if (this.#state === 3) return;
        const ws = this.#ws = new Native(u, protocols);
        ws.binaryType = this.#binaryType;
        for (const type of ["open", "message", "error", "close"]) {
          ws.addEventListener(type, (e) => this.#forward(type, e));
        }
      }, (err) => {
        this.#state = 3;
        const message = `WebSocket ${u.origin}: ${(err as Error)?.message ?? err}`;
        this.#dispatch("error", new ErrorEvent("error", { message }));
        this.#dispatch("close", new CloseEvent("close", { code: 1006, reason: message }));
      });
    }

    #forward(type: string, e: Event) {
      let copy: Event;
      if (type === "message") {
        const m = e as MessageEvent;
        copy = new MessageEvent("message", { data: m.data, origin: m.origin });
      } else if (type === "close") {
        const c = e as CloseEvent;
        copy = new CloseEvent("close", { code: c.code, reason: c.reason, wasClean: c.wasClean });
      } else if (type === "error") {
        copy = new ErrorEvent("error", { message: (e as ErrorEvent).message });
      } else copy = new Event(type);
      this.#dispatch(type, copy);
    }

    #dispatch(type: string, e: Event) {
      const handler = (this as Any)[`on${type}`];
      if (typeof handler === "function") handler.call(this, e);
      this.dispatchEvent(e);
    }

    get readyState(): number {
      return this.#ws ? this.#ws.readyState : this.#state;
    }
    get protocol(): string {
      return this.#ws?.protocol ?? "";
    }
    get extensions(): string {
      return this.#ws?.extensions ?? "";
    }
    get bufferedAmount(): number {
      return this.#ws?.bufferedAmount ?? 0;
    }
    get binaryType(): BinaryType {
      return this.#binaryType;
    }
    set binaryType(v: BinaryType) {
      this.#binaryType = v;
      if (this.#ws) this.#ws.binaryType = v;
    }
    send(data: string | ArrayBufferLike | Blob | ArrayBufferView) {
      if (!this.#ws) throw new DOMException("WebSocket is not open", "InvalidStateError");
      this.#ws.send(data);
    }
    close(code?: number, reason?: string) {
      if (this.#ws) this.#ws.close(code, reason);
      else this.#state = 3;
    }
  }
  return GuardedWebSocket as unknown as typeof WebSocket;
}

/** The RPC target the guard calls on the host (not a valid binding name, so never on `env`). */
export const EGRESS_RPC = "worky:egress";
