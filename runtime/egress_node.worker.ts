/**
 * Inside a tenant worker: the node: compatibility modules open sockets
 * through Deno's internal ops, past the `Deno.connect` wrapper, so they are
 * guarded here (part of `egress.worker.ts`). Loaded with the bootstrap, so a
 * spare worker pays the ~12 ms of node-module setup before it is needed.
 *
 * - `net.Socket#connect` (also used by `node:http`, `node:https`, `node:tls`):
 *   the host checks `host:port` first; a refusal destroys the socket with the
 *   reason. The socket then connects to the address the host checked when the
 *   tenant's `net` grant covers it (TLS above it keeps the name for SNI and the
 *   certificate), else to the name.
 * - `net.Server#listen`, `dgram` sockets: not available to tenants.
 */
import * as net from "node:net";
import * as dgram from "node:dgram";
import type { EgressCheck } from "./egress.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/**
 * Patches node:net and node:dgram; `denied(message)` builds the error,
 * `pin(addresses, port)` picks the checked address to dial (undefined: the name).
 */
export function guardNodeNet(
  check: EgressCheck,
  count: () => void,
  denied: (message: string) => Error,
  pin: (addresses: unknown, port: number) => string | undefined,
): void {
  const proto = (net.Socket as Any).prototype;
  const origConnect = proto.connect;
  proto.connect = function (this: Any, ...args: Any[]) {
    let host: string | undefined;
    let port: unknown;
    // net.connect() passes its normalized `[options, callback]` array as one argument
    let first = Array.isArray(args[0]) ? args[0][0] : args[0];
    if (first !== null && typeof first === "object") {
      // read once: a getter must not answer one host to the check and another to the dial
      first = { ...first };
      if (Array.isArray(args[0])) args[0][0] = first;
      else args = [first, ...args.slice(1)];
      if (first.path) return origConnect.apply(this, args);
      host = first.host;
      port = first.port;
    } else if (typeof first === "string" && Number.isNaN(Number(first))) {
      return origConnect.apply(this, args); // a pipe path: governed by read/write permissions
    } else {
      port = first;
      if (typeof args[1] === "string") host = args[1];
    }
    const target = host ?? "localhost";
    try {
      count();
    } catch (err) {
      queueMicrotask(() => this.destroy(err));
      return this;
    }
    this.connecting = true;
    check(target, Number(port)).then(
      (addresses) => {
        const ip = pin(addresses, Number(port));
        return origConnect.apply(this, ip === undefined ? args : withHost(args, ip));
      },
      (err: Error) => {
        this.connecting = false;
        this.destroy(denied(`node:net connect ${target}:${port}: ${err?.message ?? err}`));
      },
    );
    return this;
  };
  /** The arguments with the host replaced (in the snapshot, never the tenant's options object). */
  const withHost = (args: Any[], ip: string): Any[] => {
    if (Array.isArray(args[0])) { // net.connect()'s normalized array: ours to change
      args[0][0].host = ip; // the snapshot made above, not the tenant's object
      return args;
    }
    if (args[0] !== null && typeof args[0] === "object") {
      args[0].host = ip;
      return args;
    }
    return typeof args[1] === "string"
      ? [args[0], ip, ...args.slice(2)]
      : [args[0], ip, ...args.slice(1)];
  };
  const noListen = (what: string) =>
    function () {
      throw denied(`${what} is not available to Worky tenants: answer through fetch()`);
    };
  (net.Server as Any).prototype.listen = noListen("node:net Server#listen");
  const d = (dgram.Socket as Any).prototype;
  for (const m of ["bind", "connect", "send"]) d[m] = noListen(`node:dgram Socket#${m}`);
}
