/**
 * Inside a tenant worker: takes away the powers that reach past the worker
 * into the whole process or into other tenants, found by the escape suite
 * (`tests/security/`). Installed by the bootstrap before the tenant loads.
 *
 * - `Deno.chdir`: changes the cwd of the whole process (the host's relative paths).
 * - `Deno.addSignalListener`, `process.on("SIG…")`: would catch the host's
 *   signals (a SIGINT/SIGTERM handler keeps the host from stopping).
 * - `process.kill`: skips the `run` permission for the process's own pid:
 *   `process.kill(process.pid, "SIGKILL")` killed the host (measured, Deno 2.9.6).
 * - `node:worker_threads` `Worker`: a tenant may not start threads.
 * - node's TTY handle (`node:tty` streams, `process.binding("tty_wrap")`): the process's
 *   terminal, which a tenant read (what the operator typed) and could switch to raw mode.
 * - `BroadcastChannel`, `caches`: shared by every worker in the process, so
 *   tenants could talk to or read from each other through them.
 * - `Deno[Deno.internal]`: holds `core`, the raw ops, which bypass the egress
 *   wrappers (found by the escape suite).
 * - `open(fd)` of node's TCP, Pipe and UDP handle classes (`process.binding`): wraps any file
 *   descriptor of the process by its number (the host's listening socket, other tenants'
 *   connections), with no permission at all; closing those handles made Deno panic and the
 *   whole process die (measured, Deno 2.9.6, from a worker with `permissions: "none"`).
 *
 * Imports nothing but web/Deno/node APIs (and `node_binding.worker.ts`).
 */
import process from "node:process";
import * as workerThreads from "node:worker_threads";
import { nodeBindingClass, UV_EACCES } from "./node_binding.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

function notAvailable(what: string): () => never {
  return () => {
    const err = new TypeError(`${what} is not available to Worky tenants`);
    (err as Any).code = "ERR_PERMISSION_DENIED";
    throw err;
  };
}

/** Sets `obj[key]` for good: the tenant can neither overwrite nor delete it (exposing a prototype's). */
export function pin(obj: Any, key: string, value: unknown): void {
  Object.defineProperty(obj, key, {
    value,
    writable: false,
    configurable: false,
    enumerable: true,
  });
}

/** The stream handle methods that read or write a terminal (shared by every stream handle). */
const TERMINAL_IO = [
  "readStart",
  "writeBuffer",
  "writev",
  "writeUtf8String",
  "writeAsciiString",
  "writeLatin1String",
  "writeUcs2String",
];

/**
 * node's TTY handle (native: no parent to make throw, and `node:tty` streams make it from inside
 * the module) reads and writes the process's terminal. Every stream handle shares one native
 * `readStart` and the `write*` methods, so those refuse a TTY receiver, told apart by a TTY-only
 * native method (it throws "expected TTY" for any other receiver, whatever its JS prototype
 * says); a refused read or write completes as EACCES, so the stream errors. `setRawMode` is
 * refused outright.
 */
function guardTerminal(): void {
  const TTY = nodeBindingClass("tty_wrap", "TTY");
  const windowSize = TTY?.prototype?.getWindowSize;
  const base = TTY && Object.getPrototypeOf(TTY.prototype);
  if (typeof windowSize !== "function" || typeof base?.readStart !== "function") return;
  const isTerminal = (handle: unknown) => {
    try {
      windowSize.call(handle, []);
      return true;
    } catch {
      return false;
    }
  };
  for (const method of TERMINAL_IO) {
    const native = base[method];
    if (typeof native !== "function") continue;
    pin(base, method, function (this: Any, ...args: unknown[]) {
      return isTerminal(this) ? UV_EACCES : native.apply(this, args);
    });
  }
  pin(TTY.prototype, "setRawMode", notAvailable("node:tty setRawMode (the process's terminal)"));
}

/**
 * Deno's Web Locks are process-wide (measured: a worker saw another's held lock in `query()` and
 * could not take it), so one tenant could hold the names another's locks use, forever, and read
 * them. Every lock this worker asks for gets a random prefix of its own, and `query()` shows only
 * those: the prototype's methods are pinned, so no receiver reaches the shared names.
 */
function guardLocks(): void {
  const proto = (globalThis as Any).LockManager?.prototype;
  if (!proto || typeof proto.request !== "function" || typeof proto.query !== "function") return;
  const prefix = `${crypto.randomUUID()}:`;
  const { request, query } = proto;
  pin(proto, "request", function (this: Any, name: unknown, ...rest: unknown[]) {
    return request.call(this, prefix + String(name), ...rest);
  });
  const own = (list: { name: string }[] = []) =>
    list.filter((l) => l.name.startsWith(prefix))
      .map((l) => ({ ...l, name: l.name.slice(prefix.length) }));
  pin(proto, "query", async function (this: Any) {
    const { held, pending } = await query.call(this);
    return { held: own(held), pending: own(pending) };
  });
}

/** Removes process-wide and cross-tenant powers from this worker's globals and node modules. */
export function hardenWorker(): void {
  const g = globalThis as Any;
  const D = Deno as Any;
  pin(D, "chdir", notAvailable("Deno.chdir()"));
  pin(D, "addSignalListener", notAvailable("Deno.addSignalListener()"));
  pin(D, "removeSignalListener", notAvailable("Deno.removeSignalListener()"));
  const p = process as Any;
  // the host process's command line is the host's (an embedding program's own arguments)
  pin(D, "args", Object.freeze([]));
  p.argv = ["deno", "worker.js"];
  pin(p, "kill", notAvailable("process.kill()"));
  pin(p, "chdir", notAvailable("process.chdir()"));
  for (const method of ["on", "addListener", "once", "prependListener", "prependOnceListener"]) {
    const orig = p[method];
    if (typeof orig !== "function") continue;
    pin(p, method, function (this: Any, event: unknown, ...rest: unknown[]) {
      if (typeof event === "string" && event.startsWith("SIG")) {
        notAvailable(`process.${method}("${event}")`)();
      }
      return orig.call(this, event, ...rest);
    });
  }
  // `class Worker extends EventEmitter`: its super() call looks the parent up at
  // construction time, so a throwing parent stops every `new Worker()`.
  const NodeWorker = (workerThreads as Any).Worker;
  if (typeof NodeWorker === "function") {
    const refuse = notAvailable("node:worker_threads Worker");
    Object.setPrototypeOf(NodeWorker, function Refused() {
      refuse();
    });
    Object.preventExtensions(NodeWorker); // its parent can't be set back
    Object.freeze(NodeWorker.prototype);
  }
  guardTerminal();
  guardLocks();
  // an explicit request asks the operator's terminal where prompts are on
  // (control-plane/permission_prompts.ts)
  const permissions = Object.getPrototypeOf(D.permissions);
  for (const m of ["request", "requestSync"]) {
    if (typeof permissions?.[m] === "function") {
      pin(permissions, m, notAvailable(`Deno.permissions.${m}()`));
    }
  }
  // blob: URLs live in Deno's process-wide blob store until revoked: they outlive the worker
  // (measured: 512 MiB stayed after terminate(), readable from any worker), so a tenant could
  // keep memory no kill frees. Workers has no createObjectURL either.
  pin(URL, "createObjectURL", notAvailable("URL.createObjectURL()"));
  // Deno[Deno.internal] carries `core` (raw ops: fetch, connect, serve…, past every wrapper here)
  const internal = D.internal;
  if (internal !== undefined) {
    if (!delete D[internal]) pin(D, internal, undefined);
    delete D.internal;
  }
  for (const [module, name] of [["tcp_wrap", "TCP"], ["pipe_wrap", "Pipe"], ["udp_wrap", "UDP"]]) {
    const proto = nodeBindingClass(module, name)?.prototype;
    if (proto && "open" in proto) pin(proto, "open", notAvailable(`${name} handle open(fd)`));
  }
  for (const name of ["BroadcastChannel", "caches", "CacheStorage", "Cache"]) {
    try {
      delete g[name];
    } catch { /* not configurable: left as is */ }
  }
}
