/**
 * The egress proxy: one per process, on 127.0.0.1, speaking SOCKS5 with
 * username/password authentication (RFC 1928, RFC 1929). Tenant workers send
 * every `fetch` and `WebSocket` connection through it (a `Deno.HttpClient`
 * with `proxy: { url: "socks5h://…" }`, built by the bootstrap before the
 * tenant loads, see `egress.worker.ts`), so the name is resolved HERE, by the
 * tenant's {@linkcode EgressPolicy}, and the connection goes to exactly the
 * address that policy checked: a DNS answer that changes between the check
 * and the connection (rebinding) has nothing left to change.
 *
 * - SOCKS5, not an HTTP proxy: Deno's client tunnels both `http:` and
 *   `https:` through it (an HTTP proxy gets `http:` requests in absolute form
 *   and would have to parse and forward HTTP itself). TLS stays end to end:
 *   the client sends the name (`socks5h`), SNI and certificate checks use it.
 * - The password is a per-deployment secret ({@linkcode EgressProxy.register}):
 *   it picks the policy. It reaches the worker in its init message and lives
 *   only in the egress guard's closure; the port is refused to every tenant
 *   ({@linkcode protectEgressProxyPort}).
 * - Only `CONNECT`. The success reply's bound address is the address dialled
 *   (the standard puts the proxy's own outgoing address there; nothing reads it).
 * - Needs unrestricted `net` (listening on 127.0.0.1, dialling any checked
 *   address): a cell process with an allowlist has none, and its tenants keep
 *   the check without the pin (see `docs/architecture.md`).
 *
 * @module
 */
import type { EgressPolicy } from "./egress.ts";
import { protectEgressProxyPort } from "./egress.ts";
import { formatIp, parseIp } from "./ip_ranges.ts";
import type { EgressProxyAddress } from "./egress.worker.ts";

export type { EgressProxyAddress };

/** A deployment's registration with the proxy. */
export interface EgressProxyGrant extends EgressProxyAddress {
  /** Forgets the credentials: connections opened with them later are refused. */
  release(): void;
}

/** Tuning for tests; the defaults suit production. */
export interface EgressProxyOptions {
  /** A client that has not finished the handshake by then is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Connecting to one checked address gives up after this long (default 10 s). */
  dialTimeoutMs?: number;
}

// SOCKS5 reply codes (RFC 1928 §6)
const REP_OK = 0;
const REP_FAILURE = 1;
const REP_NOT_ALLOWED = 2;
const REP_HOST_UNREACHABLE = 4;
const REP_REFUSED = 5;
const REP_TIMEOUT = 6;
const REP_BAD_COMMAND = 7;
const REP_BAD_ADDRESS = 8;

const CHUNK = 64 * 1024;

/** Reads exact byte counts from a connection during the handshake. */
class HandshakeReader {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async bytes(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(512);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("the client closed during the SOCKS handshake");
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Bytes the client sent past the handshake (none with a conforming client). */
  rest(): Uint8Array {
    return this.#buf;
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** A SOCKS5 reply; `address` is the dialled IP (or none on failure). */
function reply(code: number, address?: string, port = 0): Uint8Array {
  const ip = address ? parseIp(address) : undefined;
  const v4 = ip && ip.length === 4;
  const addr = ip ? Uint8Array.from(ip) : new Uint8Array(4);
  return Uint8Array.from([5, code, 0, ip && !v4 ? 4 : 1, ...addr, port >> 8, port & 255]);
}

/** Copies `from` → `to` until EOF, then half-closes `to`; throws on a reset. */
async function pump(from: Deno.Conn, to: Deno.Conn, first?: Uint8Array): Promise<void> {
  if (first?.length) await writeAll(to, first);
  const buf = new Uint8Array(CHUNK);
  for (;;) {
    const n = await from.read(buf);
    if (n === null) break;
    await writeAll(to, buf.subarray(0, n));
  }
  await to.closeWrite();
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * The SOCKS5 egress proxy. {@linkcode egressProxy} gives the process's one;
 * tests may make their own.
 *
 * @example
 * ```ts ignore
 * import { EgressPolicy } from "./egress.ts";
 * const proxy = egressProxy();
 * proxy.acquire();
 * const grant = proxy.register("shop", new EgressPolicy({ net: true, allowPrivate: [] }));
 * // worker: Deno.createHttpClient({ proxy: { url: `socks5h://127.0.0.1:${grant.port}`,
 * //   basicAuth: { username: grant.username, password: grant.password } } })
 * grant.release();
 * proxy.release();
 * ```
 */
export class EgressProxy {
  readonly #handshakeMs: number;
  readonly #dialMs: number;
  readonly #grants = new Map<string, { tenant: string; policy: EgressPolicy }>();
  readonly #conns = new Set<Deno.Conn>();
  #listener: Deno.TcpListener | undefined;
  #unprotect: (() => void) | undefined;
  #users = 0;

  constructor(options: EgressProxyOptions = {}) {
    this.#handshakeMs = options.handshakeTimeoutMs ?? 10_000;
    this.#dialMs = options.dialTimeoutMs ?? 10_000;
  }

  /** Whether this process may run the proxy (listen on 127.0.0.1, dial any address). */
  static supported(): boolean {
    try {
      return Deno.permissions.querySync({ name: "net" }).state === "granted";
    } catch {
      return false;
    }
  }

  /** The listening port, or undefined while closed. */
  get port(): number | undefined {
    return this.#listener ? (this.#listener.addr as Deno.NetAddr).port : undefined;
  }

  /** Connections (client side and upstream) open now. */
  get openConnections(): number {
    return this.#conns.size;
  }

  /** One more user (a Runtime); the first starts listening, when the process may. */
  acquire(): void {
    this.#users++;
    if (this.#listener || !EgressProxy.supported()) return;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.#unprotect = protectEgressProxyPort((listener.addr as Deno.NetAddr).port);
    this.#accept(listener);
  }

  /** One user fewer; the last one closes the listener and every tunnel. */
  release(): void {
    if (this.#users > 0 && --this.#users === 0) this.close();
  }

  /** Stops listening and closes every open connection. */
  close(): void {
    const listener = this.#listener;
    this.#listener = undefined;
    this.#unprotect?.();
    this.#unprotect = undefined;
    if (listener) {
      try {
        listener.close();
      } catch { /* closed */ }
    }
    for (const c of this.#conns) closeQuietly(c);
    this.#conns.clear();
  }

  /**
   * Registers a deployment's policy under fresh random credentials. Undefined
   * when the proxy is not running (the process lacks unrestricted `net`).
   */
  register(tenant: string, policy: EgressPolicy): EgressProxyGrant | undefined {
    const port = this.port;
    if (port === undefined) return undefined;
    const password = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))));
    this.#grants.set(password, { tenant, policy });
    return {
      port,
      username: tenant,
      password,
      release: () => this.#grants.delete(password),
    };
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    try {
      for await (const conn of listener) this.#serve(conn);
    } catch { /* listener closed */ }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let upstream: Deno.Conn | undefined;
    const timer = setTimeout(() => closeQuietly(client), this.#handshakeMs);
    try {
      const r = new HandshakeReader(client);
      upstream = await this.#handshake(r);
      clearTimeout(timer);
      if (!upstream) return;
      this.#conns.add(upstream);
      const up = upstream;
      const fail = () => {
        closeQuietly(client);
        closeQuietly(up);
      };
      // a reset on either side ends both directions; a clean EOF half-closes the other side
      await Promise.all([
        pump(client, up, r.rest()).catch(fail),
        pump(up, client).catch(fail),
      ]);
    } catch {
      // a malformed or abandoned handshake: the client gets nothing more
    } finally {
      clearTimeout(timer);
      closeQuietly(client);
      this.#conns.delete(client);
      if (upstream) {
        closeQuietly(upstream);
        this.#conns.delete(upstream);
      }
    }
  }

  /** Runs the SOCKS5 handshake; returns the upstream connection, or undefined after a refusal. */
  async #handshake(r: HandshakeReader): Promise<Deno.Conn | undefined> {
    const client = r.conn;
    const [version, nMethods] = await r.bytes(2);
    if (version !== 5) return undefined;
    const methods = await r.bytes(nMethods);
    if (!methods.includes(2)) {
      await writeAll(client, Uint8Array.from([5, 0xff])); // username/password only
      return undefined;
    }
    await writeAll(client, Uint8Array.from([5, 2]));
    const [authVersion, userLength] = await r.bytes(2);
    const username = new TextDecoder().decode(await r.bytes(userLength));
    const [passLength] = await r.bytes(1);
    const password = new TextDecoder().decode(await r.bytes(passLength));
    const grant = this.#grants.get(password);
    if (authVersion !== 1 || !grant || grant.tenant !== username) {
      await writeAll(client, Uint8Array.from([1, 1]));
      return undefined;
    }
    await writeAll(client, Uint8Array.from([1, 0]));

    const [, command, , addressType] = await r.bytes(4);
    let host: string;
    if (addressType === 1) host = [...await r.bytes(4)].join(".");
    else if (addressType === 3) {
      host = new TextDecoder().decode(await r.bytes((await r.bytes(1))[0]));
    } else if (addressType === 4) host = formatIp(await r.bytes(16));
    else {
      await writeAll(client, reply(REP_BAD_ADDRESS));
      return undefined;
    }
    const portBytes = await r.bytes(2);
    const port = (portBytes[0] << 8) | portBytes[1];
    if (command !== 1) {
      await writeAll(client, reply(REP_BAD_COMMAND));
      return undefined;
    }

    let addresses: string[];
    try {
      addresses = await grant.policy.check(host, port);
    } catch {
      // the worker asks the policy itself for the reason (egress.worker.ts)
      await writeAll(client, reply(REP_NOT_ALLOWED));
      return undefined;
    }
    let code = REP_HOST_UNREACHABLE;
    for (const address of addresses) {
      const result = await this.#dial(address, port);
      if (typeof result === "number") {
        code = result;
        continue;
      }
      await writeAll(client, reply(REP_OK, address, port));
      return result;
    }
    await writeAll(client, reply(code));
    return undefined;
  }

  /** Connects to one checked address; a SOCKS reply code on failure. */
  async #dial(address: string, port: number): Promise<Deno.Conn | number> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#dialMs);
    try {
      return await Deno.connect({ hostname: address, port, signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return REP_TIMEOUT;
      if (err instanceof Deno.errors.ConnectionRefused) return REP_REFUSED;
      if (err instanceof Deno.errors.NotCapable) return REP_NOT_ALLOWED;
      return err instanceof Deno.errors.ConnectionReset ? REP_FAILURE : REP_HOST_UNREACHABLE;
    } finally {
      clearTimeout(timer);
    }
  }
}

let shared: EgressProxy | undefined;

/** The process's one egress proxy (started by the first Runtime that acquires it). */
export function egressProxy(): EgressProxy {
  return shared ??= new EgressProxy();
}
