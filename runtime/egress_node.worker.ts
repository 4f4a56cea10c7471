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
 * - Below the socket, the TCP handle class (`process.binding("tcp_wrap")`,
 *   also the `constructor` of every socket's `_handle`) is guarded too: its
 *   `connect` dials whatever address it is given with only Deno's permission
 *   check, which `net = true` passes for loopback and Worky's own ports
 *   (measured: a tenant reached the admin API that way). Now a handle dials
 *   without asking the host only the address the socket's check pinned; any
 *   other address is judged by the host first (`verify`): the address a
 *   name resolved to when dialled by name (an allowlist grants the name, so
 *   Deno resolves it again), or, for a handle the tenant drives itself, the
 *   address on its own (counted as a subrequest). Handles don't `listen`,
 *   and `bind` only for a socket's own connect (`localAddress`).
 * - `net.Server#listen`, `dgram` sockets and the UDP handle class: not
 *   available to tenants.
 */
import * as net from "node:net";
import * as dgram from "node:dgram";
import type { EgressCheck, EgressVerify } from "./egress.worker.ts";
import { nodeBindingClass, UV_EACCES } from "./node_binding.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** What a guarded `net.Socket#connect` lets its handle dial. */
interface Dial {
  /** The name the host checked. */
  host: string;
  port: number;
  /** The checked address the socket dials; undefined: it dials the name. */
  pinned: string | undefined;
  socket: Any;
}

/**
 * Patches node:net, node:dgram and their handle classes; `denied(message)` builds the error,
 * `pin(addresses, port)` picks the checked address to dial (undefined: the name).
 */
export function guardNodeNet(
  check: EgressCheck,
  verify: EgressVerify,
  count: () => void,
  denied: (message: string) => Error,
  pin: (addresses: unknown, port: number) => string | undefined,
): void {
  /** Handles a guarded connect is about to dial with, and what for. */
  const dials = new WeakMap<object, Dial>();
  guardTcpHandles(dials, verify, count, denied);
  // one handle per connection (Node's happy eyeballs dials with a fresh handle per address,
  // which would then be judged without its name)
  (net as Any).setDefaultAutoSelectFamily?.(false);
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
      first.autoSelectFamily = false;
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
        const out = origConnect.apply(this, ip === undefined ? args : withHost(args, ip));
        // the socket made (or kept) its handle; it dials once node resolved the host
        if (this._handle) {
          dials.set(this._handle, { host: target, port: Number(port), pinned: ip, socket: this });
        }
        return out;
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
  const udp = nodeBindingClass("udp_wrap", "UDP")?.prototype;
  for (const m of ["bind", "bind6", "connect", "connect6", "send", "send6"]) {
    if (udp && typeof udp[m] === "function") udp[m] = noListen(`node:dgram (UDP handle ${m})`);
  }
}

/** Guards `connect`, `bind` and `listen` of the TCP handle class; see the module doc. */
function guardTcpHandles(
  dials: WeakMap<object, Dial>,
  verify: EgressVerify,
  count: () => void,
  denied: (message: string) => Error,
): void {
  const tcp = nodeBindingClass("tcp_wrap", "TCP")?.prototype;
  if (!tcp) return;
  for (const m of ["connect", "connect6"]) {
    const orig = tcp[m];
    if (typeof orig !== "function") continue;
    tcp[m] = function (this: Any, req: Any, address: string, port: number, ...rest: Any[]) {
      const dial = dials.get(this);
      dials.delete(this);
      if (dial && dial.pinned === address && dial.port === port) {
        return orig.call(this, req, address, port, ...rest); // what the host checked
      }
      if (!dial) {
        try {
          count(); // a handle driven by the tenant itself: still one subrequest
        } catch {
          return UV_EACCES;
        }
      }
      // a name resolved again for the dial, or an address no check covered: judged first
      const byName = dial && dial.pinned === undefined;
      verify(byName ? dial.host : String(address), String(address), Number(port)).then(
        () => {
          if (dial?.socket.destroyed) return;
          let err: unknown;
          try {
            err = orig.call(this, req, address, port, ...rest);
          } catch (e) {
            err = e;
          }
          if (err) complete(req, this, typeof err === "number" ? err : UV_EACCES);
        },
        (err: Error) => {
          const why = `node:net connect ${dial?.host ?? address}:${port}: ${err?.message ?? err}`;
          if (dial) dial.socket.destroy(denied(why));
          else complete(req, this, UV_EACCES);
        },
      );
      return 0;
    };
  }
  tcp.listen = () => {
    throw denied("node:net (TCP handle listen) is not available to Worky tenants");
  };
  for (const m of ["bind", "bind6"]) {
    const orig = tcp[m];
    if (typeof orig !== "function") continue;
    tcp[m] = function (this: Any, ...args: Any[]) {
      if (!dials.has(this)) {
        throw denied(`node:net (TCP handle ${m}) is only for a socket's own connect`);
      }
      return orig.apply(this, args);
    };
  }
}

/** Completes a handle's connect request the way the handle would, with an error status. */
function complete(req: Any, handle: Any, status: number) {
  try {
    req?.oncomplete?.(status, handle, req, false, false);
  } catch { /* the requester's own callback */ }
}
