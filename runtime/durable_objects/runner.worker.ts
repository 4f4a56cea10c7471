/**
 * Runs Durable Objects inside a tenant worker: the instance map (one live
 * instance per id in this worker; the host sends every event of an id to one
 * worker), the input gate of each instance, and delivery of calls, fetches
 * and alarms. Registered in `events.worker.ts` as the `durable_object` event.
 *
 * Errors thrown by the tenant's methods are results, not event failures: they
 * cross back to the caller as `[false, { name, message }]` and the object
 * stays alive, as on Cloudflare.
 *
 * Worker code.
 *
 * @module
 */
import type { EventAdapter } from "../events.worker.ts";
import { objectBindings } from "../bindings/durable_object/stub.worker.ts";
import { ObjectId } from "../bindings/durable_object/id.worker.ts";
import { headerPairs } from "../protocol.ts";
import type {
  DurableObjectState,
  ObjectEvent,
  ObjectResult,
  WireResponse,
  WireThrown,
} from "../bindings/durable_object/types.ts";
import { InputGate } from "./input_gate.worker.ts";
import { ObjectStorage } from "./storage.worker.ts";
import { type ObjectSockets, objectSockets } from "../websocket/object_sockets.worker.ts";
import { exportEnd, upgradeOf } from "../websocket/websocket_pair.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

interface Instance {
  object: Any;
  storage: ObjectStorage;
  gate: InputGate;
  /** Settles when the constructor's `blockConcurrencyWhile` work is done. */
  ready: Promise<void>;
  /** WebSockets accepted with `ctx.acceptWebSocket`. */
  sockets: ObjectSockets;
}

const instances = new Map<string, Instance>();

/** Method names that RPC can't reach (handlers and the object's plumbing). */
const NOT_RPC = new Set([
  "constructor",
  "alarm",
  "webSocketMessage",
  "webSocketClose",
  "webSocketError",
  "ctx",
  "env",
]);

function thrown(err: unknown): WireThrown {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: "Error", message: String(err) };
}

/** Checks at module load that every bound class is exported, then handles object events. */
export const durableObjectAdapter: EventAdapter = (mod, env) => {
  if (objectBindings.size === 0) return undefined;
  for (const b of objectBindings.values()) {
    if (typeof mod[b.className] !== "function") {
      const exported = Object.keys(mod).filter((k) => typeof mod[k] === "function");
      throw new Error(
        `env.${b.binding}: durable_objects binds class "${b.className}", but the module exports ` +
          `no class by that name (exported: ${exported.join(", ") || "none"})`,
      );
    }
  }
  return (payload) => deliver(mod, env, payload as ObjectEvent);
};

function instanceOf(mod: Any, env: Record<string, unknown>, e: ObjectEvent): Instance {
  const key = `${e.className}/${e.id}`;
  let inst = instances.get(key);
  if (inst) return inst;
  const binding = objectBindings.get(e.className)!;
  const gate = new InputGate();
  const storage = new ObjectStorage(binding.binding, e.id, binding.rpc, gate);
  const blockers: Promise<unknown>[] = [];
  const sockets = objectSockets((method, args) => {
    if (instances.get(key) === inst) deliverSocketEvent(inst!, e.className, method, args);
  });
  const state: DurableObjectState = {
    id: new ObjectId(e.id, e.name),
    storage,
    blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T> {
      const p = gate.hold(callback);
      blockers.push(p);
      return p;
    },
    waitUntil(promise: Promise<unknown>) {
      promise.catch((err) => console.error("waitUntil:", err));
    },
    acceptWebSocket: sockets.acceptWebSocket,
    getWebSockets: sockets.getWebSockets,
    getTags: sockets.getTags,
  };
  const Class = mod[e.className];
  inst = { object: undefined, storage, gate, ready: Promise.resolve(), sockets };
  instances.set(key, inst);
  try {
    inst.object = new Class(state, env);
  } catch (err) {
    instances.delete(key);
    throw err;
  }
  inst.ready = Promise.all(blockers).then(() => {}, (err) => {
    // a failed initialisation: the next event builds the object again
    instances.delete(key);
    throw err;
  });
  return inst;
}

async function deliver(mod: Any, env: Record<string, unknown>, e: ObjectEvent): Promise<unknown> {
  if (e.op === "evict") {
    const key = `${e.className}/${e.id}`;
    const inst = instances.get(key);
    instances.delete(key);
    inst?.sockets.closeAll(1001, "Durable Object evicted");
    await inst?.storage.sync();
    return [true, null] satisfies ObjectResult;
  }
  let inst: Instance;
  try {
    inst = instanceOf(mod, env, e);
    await inst.ready;
  } catch (err) {
    return [false, thrown(err)] satisfies ObjectResult;
  }
  // gate.run, not `await gate.enter()`: an event starts in the turn it is admitted, so two
  // messages dispatched back to back can't both pass an open gate before either reads storage
  return await new Promise<ObjectResult>((resolve) =>
    inst.gate.run(() => resolve(runAdmitted(inst, e)))
  );
}

async function runAdmitted(inst: Instance, e: ObjectEvent): Promise<ObjectResult> {
  try {
    const value = await run(inst, e);
    await inst.storage.sync(); // output gate: the result waits for the writes it made
    return [true, value] satisfies ObjectResult;
  } catch (err) {
    await inst.storage.sync().catch(() => {});
    return [false, thrown(err)] satisfies ObjectResult;
  }
}

async function run(inst: Instance, e: ObjectEvent): Promise<unknown> {
  const object = inst.object;
  switch (e.op) {
    case "call": {
      const fn = NOT_RPC.has(e.method) || e.method.startsWith("_") ? undefined : object[e.method];
      if (typeof fn !== "function" || fn === Object.prototype[e.method as keyof object]) {
        throw new TypeError(`The RPC receiver does not implement the method "${e.method}".`);
      }
      return await fn.apply(object, e.args);
    }
    case "fetch": {
      if (typeof object.fetch !== "function") {
        throw new TypeError(`Durable Object class ${e.className} has no fetch() handler`);
      }
      const r = e.request;
      const request = new Request(r.url, { method: r.method, headers: r.headers, body: r.body });
      const res = await object.fetch(request);
      if (!(res instanceof Response)) {
        throw new TypeError(`${e.className}.fetch() must return a Response`);
      }
      const headers = headerPairs(res.headers);
      const ws = res.status === 101 ? upgradeOf(res) : undefined;
      if (ws) {
        // the client end is relayed from this worker (runtime/websocket/relay.ts)
        const webSocket = exportEnd(ws, `${e.className}/${e.id}`);
        return { status: 101, statusText: "", headers, body: null, webSocket };
      }
      const body = res.body ? new Uint8Array(await res.arrayBuffer()) : null;
      return {
        status: res.status,
        statusText: res.statusText,
        headers,
        body,
      } satisfies WireResponse;
    }
    case "alarm": {
      if (typeof object.alarm !== "function") return null;
      await object.alarm({ retryCount: e.retryCount, isRetry: e.retryCount > 0 });
      return null;
    }
  }
}

/**
 * Delivers a WebSocket event of an accepted socket to the object's handler
 * (`webSocketMessage`, `webSocketClose`, `webSocketError`), through its input
 * gate like any other event; writes it made are synced after. A throwing
 * handler is logged; the object and the socket stay.
 */
async function deliverSocketEvent(
  inst: Instance,
  className: string,
  method: string,
  args: unknown[],
): Promise<void> {
  try {
    await inst.ready;
  } catch {
    return; // initialisation failed: the object is gone
  }
  // gate.run, not `await gate.enter()`: the handler starts in the same turn it is admitted
  inst.gate.run(async () => {
    try {
      const fn = inst.object[method];
      if (typeof fn === "function") await fn.apply(inst.object, args);
    } catch (err) {
      console.error(`${className}.${method}() threw:`, err);
    } finally {
      await inst.storage.sync().catch(() => {});
    }
  });
}
