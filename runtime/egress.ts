/**
 * Host side of egress control: decides whether a tenant may open a
 * connection to `host:port`, and to which addresses. The egress proxy
 * (`egress_proxy.ts`) asks it for every connection a tenant's `fetch` or
 * `WebSocket` opens and dials exactly the addresses it returns; tenant workers
 * ask over RPC before `Deno.connect`, `Deno.connectTls` and `node:net` and dial
 * the returned address (see `egress.worker.ts`); Deno's own `net` permission
 * check applies as well.
 *
 * Rule: loopback, private, link-local, unique-local, multicast, reserved and
 * unspecified addresses, and every address of this machine's interfaces (the
 * control plane itself), are refused unless the tenant's config names them:
 * an entry of `permissions.net` that is exactly the host (or `host:port`), or
 * an `egress.allow_private` entry (host, `host:port` or CIDR). Names are
 * resolved here, with the system resolver fetch itself uses, and every
 * address a name resolves to must pass.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { classifyIp, formatIp, inRange, type IpRange, parseCidr, parseIp } from "./ip_ranges.ts";
import { WorkyError } from "./errors.ts";
import type { BindingHost } from "./bindings/types.ts";

/** The RPC target name the worker side calls (not a valid binding name, so never on `env`). */
export { EGRESS_RPC } from "./egress.worker.ts";

/** What a deployment's egress policy is built from. */
export interface EgressConfig {
  /** The tenant's `permissions.net` grant. */
  net: boolean | string[];
  /** `egress.allow_private`: hosts, `host:port` or CIDR ranges that may be private. */
  allowPrivate: string[];
}

/** Resolves a host name to addresses (injectable for tests). */
export type Resolver = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), as fetch and Deno.connect use. */
const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Addresses of this machine's interfaces; a tenant may not dial them (the control plane). */
function localAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return [];
  }
}

/**
 * Ports of Worky's own servers (control plane, egress proxy) → what listens
 * there: never reachable from a tenant on a local address, whatever the config.
 */
const protectedPorts = new Map<number, string>();

/** Protects `port` for `what`; returns the undo. */
function protectPort(port: number, what: string): () => void {
  protectedPorts.set(port, what);
  return () => {
    if (protectedPorts.get(port) === what) protectedPorts.delete(port);
  };
}

/**
 * Marks `port` (on this machine's addresses) as the control plane's: no tenant
 * may dial it, even when its config names the address. Returns the undo.
 */
export function protectControlPlanePort(port: number): () => void {
  return protectPort(port, "the Worky control plane");
}

/** Marks `port` as the egress proxy's (`egress_proxy.ts`), like the control plane's. */
export function protectEgressProxyPort(port: number): () => void {
  return protectPort(port, "the Worky egress proxy");
}

/** Lowercases, strips brackets and a trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

function splitEntry(entry: string): { host: string; port?: number } {
  const e = entry.trim();
  if (e.startsWith("[")) {
    const end = e.indexOf("]");
    const port = e.slice(end + 1).startsWith(":") ? Number(e.slice(end + 2)) : undefined;
    return { host: normalizeHost(e.slice(0, end + 1)), port };
  }
  const colon = e.lastIndexOf(":");
  if (colon > 0 && e.indexOf(":") === colon && /^\d+$/.test(e.slice(colon + 1))) {
    return { host: normalizeHost(e.slice(0, colon)), port: Number(e.slice(colon + 1)) };
  }
  return { host: normalizeHost(e) };
}

/**
 * One tenant's egress policy.
 *
 * @example
 * ```ts
 * import { EgressPolicy } from "./egress.ts";
 * const policy = new EgressPolicy({ net: true, allowPrivate: ["10.1.0.0/16"] });
 * await policy.check("10.1.2.3", 80); // allowed: named by allow_private
 * await policy.check("127.0.0.1", 8787).catch((e) => console.log(e.code)); // ERR_PERMISSION_DENIED
 * ```
 */
export class EgressPolicy {
  readonly #named: { host: string; port?: number }[] = [];
  readonly #ranges: IpRange[] = [];
  readonly #resolve: Resolver;
  readonly #self: Set<string>;

  constructor(
    config: EgressConfig,
    options: { resolve?: Resolver; selfAddresses?: string[] } = {},
  ) {
    const entries = [...(Array.isArray(config.net) ? config.net : []), ...config.allowPrivate];
    for (const entry of entries) {
      const range = entry.includes("/") ? parseCidr(entry.trim()) : undefined;
      if (range) this.#ranges.push(range);
      else this.#named.push(splitEntry(entry));
    }
    this.#resolve = options.resolve ?? systemResolver;
    this.#self = new Set(
      (options.selfAddresses ?? localAddresses()).flatMap((a) => {
        const ip = parseIp(a);
        return ip ? [formatIp(ip)] : [];
      }),
    );
  }

  #namedExplicitly(host: string, port: number): boolean {
    return this.#named.some((n) => n.host === host && (n.port === undefined || n.port === port));
  }

  /** Why `address` is refused, or undefined when it may be dialled. */
  #refusal(address: string, port: number): string | undefined {
    const ip = parseIp(address);
    if (!ip) return `"${address}" is not an address`;
    const text = formatIp(ip);
    const cls = classifyIp(ip);
    const local = cls === "loopback" || cls === "unspecified" || this.#self.has(text);
    const ours = protectedPorts.get(port);
    if (local && ours) return `${text}:${port} is ${ours}`;
    if (this.#namedExplicitly(text, port)) return undefined;
    if (this.#ranges.some((r) => inRange(ip, r))) return undefined;
    if (cls !== "public") return `${text} is a ${cls} address`;
    if (this.#self.has(text)) return `${text} is an address of the Worky host`;
    return undefined;
  }

  /**
   * Why `address` is refused for a host the config names (`named`: only Worky's own ports) or
   * not, phrased to follow "it resolves to" / "the connection reached"; undefined when allowed.
   */
  #refusedFor(address: string, port: number, named: boolean): string | undefined {
    const why = this.#refusal(address, port);
    if (!why || (named && !why.includes(" is the Worky "))) return undefined;
    return why.replace(/^(\S+) is/, "$1, which is");
  }

  /**
   * Resolves and checks `host:port`; returns the addresses a connection may
   * use (every one passed), in the resolver's order. Throws
   * `ERR_PERMISSION_DENIED` naming the host and the refused address. A host
   * the config names is still resolved here, so the caller dials what was
   * checked; only Worky's own ports are refused for it.
   */
  async check(hostInput: string, port: number): Promise<string[]> {
    const host = normalizeHost(String(hostInput));
    const deny = (why: string): never => {
      throw new WorkyError(
        "ERR_PERMISSION_DENIED",
        `egress to "${host}:${port}" refused: ${why} (name it in permissions.net or ` +
          `egress.allow_private to allow it)`,
      );
    };
    if (!Number.isInteger(port) || port < 0 || port > 65535) deny(`port ${port} is not valid`);
    if (host === "") deny("empty host");
    const ip = parseIp(host);
    if (ip) {
      const why = this.#refusal(host, port);
      if (why) deny(why);
      return [formatIp(ip)];
    }
    const named = this.#namedExplicitly(host, port);
    let addresses: string[];
    if (host === "localhost" || host.endsWith(".localhost")) {
      if (!named) deny("localhost is loopback");
      addresses = ["127.0.0.1", "::1"];
    } else {
      try {
        addresses = await this.#resolve(host);
      } catch (err) {
        return deny(`the name does not resolve (${(err as Error)?.message ?? err})`);
      }
    }
    if (addresses.length === 0) deny("the name resolves to no address");
    const out: string[] = [];
    for (const a of addresses) {
      const parsed = parseIp(a);
      const why = this.#refusedFor(a, port, named);
      if (why) deny(`it resolves to ${why}`);
      if (parsed) out.push(formatIp(parsed));
    }
    if (out.length === 0) deny("the name resolves to no address");
    return out;
  }

  /**
   * After a connection to `host` dialled by name (an allowlist grants the name, not its
   * addresses, so Deno resolved it again): throws `ERR_PERMISSION_DENIED` when the address it
   * reached is one {@link check} would have refused for that name, so a DNS answer that changed
   * in between (rebinding) gets no use of the connection.
   */
  verify(hostInput: string, address: string, port: number): void {
    const host = normalizeHost(String(hostInput));
    const why = this.#refusedFor(address, port, this.#namedExplicitly(host, port));
    if (!why) return;
    throw new WorkyError(
      "ERR_PERMISSION_DENIED",
      `egress to "${host}:${port}" refused: the connection reached ${why} ` +
        `(the name resolved differently when dialled)`,
    );
  }
}

/**
 * The RPC host the worker side calls: `check(host, port)` answers the checked
 * addresses (the worker dials one of them) or rejects with the reason;
 * `verify(host, address, port)` judges the address a connection dialled by
 * name reached.
 */
export function egressHost(policy: EgressPolicy): BindingHost {
  return {
    call(method, args) {
      if (method === "check") return policy.check(String(args[0]), Number(args[1]));
      if (method === "verify") {
        try {
          policy.verify(String(args[0]), String(args[1]), Number(args[2]));
          return Promise.resolve(true);
        } catch (err) {
          return Promise.reject(err);
        }
      }
      return Promise.reject(new WorkyError("ERR_BAD_REQUEST", `egress: no method "${method}"`));
    },
  };
}
