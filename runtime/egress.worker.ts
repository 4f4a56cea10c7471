/**
 * Inside a tenant worker: guards every way out to the network. Installed by
 * the bootstrap before the tenant module loads; the original functions live
 * only in this module's closure, so tenant code cannot reach them.
 *
 * The host's egress policy (`egress.ts`) resolves each name and refuses
 * loopback/private/link-local/metadata addresses and the Worky host itself
 * unless the config names them. The connection then goes to an address the
 * policy checked, never to a second resolution of the name (DNS rebinding):
 *
 * - `fetch`, `WebSocket`, `EventSource` and every client of
 *   `Deno.createHttpClient` go through the host's egress proxy
 *   (`egress_proxy.ts`, SOCKS5 on 127.0.0.1): the proxy resolves and checks
 *   the name with this tenant's policy and dials the checked address. The
 *   proxy's credentials come with init ({@linkcode EgressGuard.useProxy}) and
 *   stay in this closure. Redirects are followed here, hop by hop, so each
 *   hop is a new checked connection. Deno still checks the tenant's own
 *   `permissions.net` against the URL.
 * - `Deno.connect`, `Deno.connectTls` (TCP, then `Deno.startTls` with the
 *   name) and `node:net` ask the host (`check(host, port)` over RPC) and dial
 *   the address it answers, when the tenant's `net` grant covers that address
 *   (always with `net = true`); an allowlist that grants the name only dials
 *   the name (the policy lets a listed name reach any address but Worky's own
 *   ports), and the tenant gets that connection only once the host verified
 *   the address Deno's own resolution reached (`verify`: a rebinding to
 *   Worky's ports is closed unused); `node:net` has the address its own
 *   resolution of the name found verified before it dials it.
 * - Without a proxy (a cell without unrestricted `net`), `fetch` and
 *   `WebSocket` are checked before each hop and dial the name.
 * - `Deno.resolveDns` with a `nameServer`: the host checks that address first.
 * - `Deno.listen*` / `Deno.serve`: a tenant answers through its `fetch`
 *   handler; it never opens listening sockets on the host.
 * - `Deno.createHttpClient` with a `proxy`: refused; other clients are built
 *   on the egress proxy. A client not built here is refused by `fetch`.
 *
 * Each fetch or connect counts against the event's subrequest limit.
 * Imports nothing but web/Deno APIs.
 */

import { guardNodeNet } from "./egress_node.worker.ts";
import { guardedEventSource } from "./egress_eventsource.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/**
 * Asks the host whether `host:port` may be dialled: resolves with the checked
 * addresses (to dial one of them), rejects with the reason.
 */
export type EgressCheck = (host: string, port: number) => Promise<unknown>;

/**
 * Asks the host whether a connection to `host` dialled by name may keep the address it
 * reached: resolves when it may, rejects with the reason (`EgressPolicy.verify`).
 */
export type EgressVerify = (host: string, address: string, port: number) => Promise<unknown>;

/** Where the host's egress proxy listens (127.0.0.1) and this deployment's credentials. */
export interface EgressProxyAddress {
  /** TCP port on 127.0.0.1. */
  port: number;
  /** The tenant name. */
  username: string;
  /** The deployment's secret: selects its egress policy in the proxy. */
  password: string;
}

/** What the bootstrap gets back. */
export interface EgressGuard {
  /** Sets the per-event subrequest limit (0 = unlimited). */
  setSubrequestLimit(n: number): void;
  /** Forgets the subrequest count of a finished event. */
  endEvent(eventKey: string): void;
  /** Sends fetch/WebSocket through the egress proxy (call once, before the tenant loads). */
  useProxy(address: EgressProxyAddress | undefined): void;
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

const reason = (err: unknown) => (err as Error)?.message ?? String(err);

/** `host:port` as Deno's permission API spells it. */
function permissionHost(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Replaces the network APIs of this worker with checked ones.
 *
 * @example
 * ```ts ignore
 * const guard = installEgress(
 *   (host, port) => rpc("worky:egress", "check", [host, port]),
 *   () => ctx.getStore(),
 *   (host, address, port) => rpc("worky:egress", "verify", [host, address, port]),
 * );
 * guard.setSubrequestLimit(50);
 * ```
 */
export function installEgress(
  check: EgressCheck,
  currentEvent: () => string | undefined,
  verify: EgressVerify,
): EgressGuard {
  const g = globalThis as Any;
  const D = Deno as Any;
  const origFetch: typeof fetch = g.fetch.bind(g);
  const NativeRequest = g.Request as typeof Request;
  const NativeURL = URL;
  const origConnect = D.connect?.bind(D);
  const origConnectTls = D.connectTls?.bind(D);
  const origCreateHttpClient = D.createHttpClient?.bind(D);
  const origStartTls = D.startTls?.bind(D);
  const querySync = D.permissions?.querySync?.bind(D.permissions);
  const NativeWebSocket = g.WebSocket as typeof WebSocket | undefined;
  let limit = 0;
  const counts = new Map<string, number>();
  /** The proxy settings every HTTP client gets; undefined = no proxy (check, then dial the name). */
  let proxy: Any;
  /** The client of fetch/WebSocket calls that name none. */
  let proxyClient: Any;
  /** Clients made by the createHttpClient below: the only ones fetch accepts. */
  const ourClients = new WeakSet<object>();

  /** The checked addresses the tenant's own `net` grant lets it dial (Deno checks the IP). */
  const dialable = (addresses: unknown, port: number): string[] => {
    if (!Array.isArray(addresses) || !querySync) return [];
    return addresses.filter((ip) => {
      try {
        return querySync({ name: "net", host: permissionHost(String(ip), port) }).state ===
          "granted";
      } catch {
        return false;
      }
    });
  };

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

  /** The client a request uses: the tenant's (made here, so on the proxy) or the proxy's. */
  const clientOf = (client: unknown) => {
    if (client === undefined || client === null) return proxyClient;
    if (!ourClients.has(client as object)) {
      throw denied("fetch: the client was not made by Deno.createHttpClient()");
    }
    return client;
  };

  /**
   * One hop. With the proxy, the proxy checks (and pins) the connection; a
   * failed fetch asks the host why, so a refusal reads as one.
   */
  const hop = async (req: Request, url: URL, init: Any): Promise<Response> => {
    const network = url.protocol === "http:" || url.protocol === "https:";
    if (!proxy || !network) {
      try {
        await checkUrl(url);
      } catch (err) {
        throw denied(`fetch ${url.origin}: ${reason(err)}`);
      }
      return await origFetch(req, init);
    }
    try {
      return await origFetch(req, init);
    } catch (err) {
      if ((err as Error)?.name !== "AbortError") {
        try {
          await check(url.hostname, defaultPort(url));
        } catch (why) {
          throw denied(`fetch ${url.origin}: ${reason(why)}`);
        }
      }
      throw err;
    }
  };

  async function guardedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    count();
    const client = clientOf((init as Any)?.client);
    let req = new NativeRequest(input, init);
    const follow = req.redirect === "follow";
    for (let hops = 0;; hops++) {
      const url = new NativeURL(req.url);
      const replay = follow && req.body ? req.clone() : undefined;
      const res = await hop(req, url, { redirect: follow ? "manual" : req.redirect, client });
      const location = res.headers.get("location");
      if (!follow || !REDIRECTS.has(res.status) || location === null) return res;
      if (hops >= MAX_HOPS) {
        throw new TypeError(`fetch ${req.url}: more than ${MAX_HOPS} redirects`);
      }
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

  /** Connects to the first checked address that answers; undefined when none is dialable. */
  const connectPinned = async (options: Any, addresses: unknown, port: number) => {
    const ips = dialable(addresses, port);
    if (ips.length === 0) return undefined;
    let last: unknown;
    for (const ip of ips) {
      try {
        return await origConnect({ ...options, transport: "tcp", hostname: ip });
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };

  const wrapConnect = (orig: Any, name: string, tls: boolean) =>
    orig &&
    (async (tenantOptions: Any) => {
      // read once: a getter must not answer one host to the check and another to the dial
      const options = tenantOptions !== null && typeof tenantOptions === "object"
        ? { ...tenantOptions }
        : tenantOptions;
      const transport = options?.transport ?? "tcp";
      if (transport !== "tcp") return await orig(options);
      count();
      const host = options?.hostname ?? "127.0.0.1";
      const port = Number(options?.port);
      let addresses: unknown;
      try {
        addresses = await check(host, port);
      } catch (err) {
        throw denied(`Deno.${name} ${host}:${options?.port}: ${reason(err)}`);
      }
      // connectTls with a client certificate: startTls takes none, so it dials the name
      const clientCert = tls && (options.cert || options.key || options.certChain);
      if (!clientCert && (!tls || origStartTls)) {
        const conn = await connectPinned(options, addresses, port);
        if (conn && !tls) return conn;
        if (conn) {
          return await origStartTls(conn, {
            hostname: host,
            caCerts: options.caCerts,
            alpnProtocols: options.alpnProtocols,
            unsafelyDisableHostnameVerification: options.unsafelyDisableHostnameVerification,
          });
        }
      }
      // dialled by name: Deno resolved it again, so the address it reached is checked before
      // the tenant can send a byte on it
      const conn = await orig(options);
      try {
        await verify(host, String(conn?.remoteAddr?.hostname), port);
      } catch (err) {
        try {
          conn.close();
        } catch { /* closed */ }
        throw denied(`Deno.${name} ${host}:${options?.port}: ${reason(err)}`);
      }
      return conn;
    });
  D.connect = wrapConnect(origConnect, "connect", false);
  D.connectTls = wrapConnect(origConnectTls, "connectTls", true);

  // A name server of the tenant's choosing is a datagram to any address (measured: a query
  // reached a UDP listener on 127.0.0.1): the host checks it like any other destination.
  const origResolveDns = D.resolveDns?.bind(D);
  if (origResolveDns) {
    D.resolveDns = async (query: unknown, type: unknown, options?: Any) => {
      const server = options?.nameServer;
      if (server === undefined || server === null) {
        return await origResolveDns(query, type, options);
      }
      // read once: a getter must not answer one address to the check and another to the query
      const nameServer = { ipAddr: String(server.ipAddr), port: Number(server.port ?? 53) };
      count();
      try {
        await check(nameServer.ipAddr, nameServer.port);
      } catch (err) {
        throw denied(
          `Deno.resolveDns via name server ${nameServer.ipAddr}:${nameServer.port}: ${reason(err)}`,
        );
      }
      return await origResolveDns(query, type, { ...options, nameServer });
    };
  }

  const noListen = (name: string) => () => {
    throw denied(`Deno.${name}() is not available to Worky tenants: answer through fetch()`);
  };
  for (const name of ["listen", "listenTls", "listenDatagram", "serve", "connectQuic"]) {
    if (name in D) D[name] = noListen(name);
  }
  if (origCreateHttpClient) {
    D.createHttpClient = (options: Any) => {
      const own = { ...options }; // read once: a getter cannot answer differently later
      if (own.proxy) {
        throw denied("Deno.createHttpClient({ proxy }) is not available to Worky tenants");
      }
      if (proxy) own.proxy = proxy;
      else delete own.proxy;
      const client = origCreateHttpClient(own);
      ourClients.add(client);
      return client;
    };
  }
  if (NativeWebSocket) {
    g.WebSocket = guardedWebSocket(NativeWebSocket, check, count, clientOf, () => !!proxy);
  }
  if (typeof g.EventSource === "function") g.EventSource = guardedEventSource(guardedFetch);
  guardNodeNet(check, verify, count, denied, (addresses, port) => dialable(addresses, port)[0]);

  return {
    setSubrequestLimit(n) {
      limit = n;
    },
    endEvent(key) {
      if (counts.size !== 0) counts.delete(key);
    },
    useProxy(address) {
      if (!address || proxy || !origCreateHttpClient) return;
      proxy = {
        url: `socks5h://127.0.0.1:${address.port}`,
        basicAuth: { username: address.username, password: address.password },
      };
      proxyClient = origCreateHttpClient({ proxy });
    },
  };
}

/**
 * A WebSocket that connects through the egress proxy's client when there is one (`proxied()`:
 * the proxy checks and dials the checked address, as for fetch; a connection that fails before
 * opening asks the host why, so a refusal reads as one), else only after the host allowed its
 * address. It forwards the real socket's events and methods; until then it is CONNECTING and
 * buffers nothing (send() throws, like a real one). Takes Deno's second argument either way:
 * protocols, or `{ protocols, headers, client }`.
 */
function guardedWebSocket(
  Native: typeof WebSocket,
  check: EgressCheck,
  count: () => void,
  clientOf: (client: unknown) => unknown,
  proxied: () => boolean,
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

    constructor(url: string | URL, protocolsOrOptions?: string | string[] | Any) {
      super();
      const u = new URL(url);
      if (u.protocol === "http:") u.protocol = "ws:";
      if (u.protocol === "https:") u.protocol = "wss:";
      if (u.protocol !== "ws:" && u.protocol !== "wss:") {
        throw new DOMException(`"${u.href}" is not a ws: or wss: URL`, "SyntaxError");
      }
      const options: Any = typeof protocolsOrOptions === "string" ||
          Array.isArray(protocolsOrOptions) || protocolsOrOptions == null
        ? { protocols: protocolsOrOptions ?? undefined }
        : { ...protocolsOrOptions };
      options.client = clientOf(options.client);
      if (options.client === undefined) delete options.client;
      count();
      this.url = u.href;
      const refuse = (err: unknown) => {
        this.#state = 3;
        const message = `WebSocket ${u.origin}: ${(err as Error)?.message ?? err}`;
        this.#dispatch("error", new ErrorEvent("error", { message }));
        this.#dispatch("close", new CloseEvent("close", { code: 1006, reason: message }));
      };
      const connect = (viaProxy: boolean) => {
        if (this.#state === 3) return;
        const ws = this.#ws = new Native(u, options);
        ws.binaryType = this.#binaryType;
        // error + close of a proxied connection that never opened are held while the host says
        // why (a refusal reads as one, as for fetch), then passed on or replaced by the refusal
        let mode: "pass" | "hold" | "drop" = viaProxy ? "hold" : "pass";
        let held: Event[] | undefined;
        ws.addEventListener("open", (e) => (mode = "pass", this.#forward("open", e)));
        ws.addEventListener("message", (e) => this.#forward("message", e));
        for (const type of ["error", "close"]) {
          ws.addEventListener(type, (e) => {
            if (mode === "pass") return this.#forward(type, e);
            if (mode === "drop") return;
            if (held) return held.push(e);
            held = [e];
            check(u.hostname, defaultPort(u)).then(() => {
              mode = "pass";
              for (const f of held!) this.#forward(f.type, f);
            }, (err) => {
              mode = "drop";
              refuse(err);
            });
          });
        }
      };
      if (proxied()) connect(true);
      else check(u.hostname, defaultPort(u)).then(() => connect(false), refuse);
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
