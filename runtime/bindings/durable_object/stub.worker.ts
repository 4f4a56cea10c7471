/**
 * The worker half of Durable Objects: the `DurableObjectNamespace` a tenant
 * sees on `env`, its ids and its stubs. A stub call (`stub.increment(1)`,
 * `stub.fetch(req)`) is one RPC to the binding host, which delivers it to the
 * one worker that holds the object. Arguments and results cross by structured
 * clone; an argument that can't be cloned fails here with a clear error.
 *
 * It also keeps the list of Durable Object bindings of this worker
 * ({@link objectBindings}) for the object runner (`runtime/durable_objects/runner.worker.ts`),
 * whose storage calls go over the same RPC channel.
 *
 * @module
 */
import type { BindingSpec, RpcCall, StubFactory } from "../types.ts";
import { idFromName, idFromString, idNamespace, newUniqueId, ObjectId } from "./id.worker.ts";
import type {
  DurableObjectBindingConfig,
  DurableObjectId,
  DurableObjectNamespace,
  DurableObjectStub,
  ObjectResult,
  WireRequest,
  WireResponse,
} from "./types.ts";
import { remoteEnd, upgradeResponse } from "../../websocket/websocket_pair.worker.ts";
import { headerPairs } from "../../protocol.ts";

/** A Durable Object binding of this worker, as the object runner needs it. */
export interface ObjectBinding {
  binding: string;
  tenant: string;
  className: string;
  rpc: RpcCall;
}

/** Class name → its binding (the first one bound, if several bind the same class). */
export const objectBindings: Map<string, ObjectBinding> = new Map();

/**
 * Builds `env.NAME` for a Durable Object binding.
 *
 * @example
 * ```ts
 * import { createDurableObjectStub } from "./stub.worker.ts";
 * const rpc = () => Promise.resolve([true, 1]);
 * const ns = createDurableObjectStub(
 *   { name: "COUNTER", kind: "durable_object", config: { tenant: "t", className: "Counter" } },
 *   rpc,
 * ) as { idFromName(n: string): { toString(): string } };
 * console.log(ns.idFromName("a").toString().length); // 64
 * ```
 */
export const createDurableObjectStub: StubFactory = (spec: BindingSpec, rpc: RpcCall) => {
  const config = spec.config as unknown as DurableObjectBindingConfig;
  if (!objectBindings.has(config.className)) {
    objectBindings.set(config.className, {
      binding: spec.name,
      tenant: config.tenant,
      className: config.className,
      rpc,
    });
  }
  return new Namespace(spec.name, config, rpc);
};

class Namespace implements DurableObjectNamespace {
  readonly #binding: string;
  readonly #className: string;
  readonly #ns: string;
  readonly #rpc: RpcCall;

  constructor(binding: string, config: DurableObjectBindingConfig, rpc: RpcCall) {
    this.#binding = binding;
    this.#className = config.className;
    this.#ns = idNamespace(config.tenant, config.className);
    this.#rpc = rpc;
  }

  idFromName(name: string): DurableObjectId {
    return idFromName(this.#ns, name);
  }

  newUniqueId(): DurableObjectId {
    return newUniqueId(this.#ns);
  }

  idFromString(id: string): DurableObjectId {
    return idFromString(this.#ns, id, this.#className);
  }

  get(id: DurableObjectId): DurableObjectStub {
    if (!(id instanceof ObjectId)) {
      throw new TypeError(
        `env.${this.#binding}.get(): expected a DurableObjectId from this namespace, got ${
          id === null ? "null" : typeof id
        }`,
      );
    }
    // re-check: an id of another class must not reach its objects through this binding
    idFromString(this.#ns, id.toString(), this.#className);
    return makeStub(this.#binding, this.#className, id, this.#rpc) as unknown as DurableObjectStub;
  }

  getByName(name: string): DurableObjectStub {
    return this.get(this.idFromName(name));
  }
}

function fail(thrown: { name: string; message: string; stack?: string }): never {
  const err = new Error(thrown.message);
  err.name = thrown.name;
  if (thrown.stack) err.stack = thrown.stack;
  throw err;
}

async function toWireRequest(input: Request | string | URL, init?: RequestInit) {
  const request = new Request(input, init);
  const headers = headerPairs(request.headers);
  const body = request.body ? new Uint8Array(await request.arrayBuffer()) : null;
  return { method: request.method, url: request.url, headers, body } satisfies WireRequest;
}

function makeStub(binding: string, className: string, id: ObjectId, rpc: RpcCall) {
  const hex = id.toString();
  const name = id.name;
  const call = async (method: string, args: unknown[]) => {
    let sent: Promise<unknown>;
    try {
      sent = rpc(binding, "call", [hex, name, method, args]);
    } catch (err) {
      throw cloneError(className, method, err);
    }
    let result: ObjectResult;
    try {
      result = await sent as ObjectResult;
    } catch (err) {
      throw cloneError(className, method, err);
    }
    return result[0] ? result[1] : fail(result[1]);
  };
  const stubFetch = async (input: Request | string | URL, init?: RequestInit) => {
    const request = await toWireRequest(input, init);
    const result = await rpc(binding, "fetch", [hex, name, request]) as ObjectResult;
    if (!result[0]) fail(result[1]);
    const res = result[1] as WireResponse;
    if (res.webSocket) {
      // the object accepted a WebSocket: answer this 101 to connect the client to it
      return upgradeResponse(Response, null, {
        status: 101,
        headers: res.headers,
        webSocket: remoteEnd(res.webSocket),
      });
    }
    const nullBody = [101, 204, 205, 304].includes(res.status);
    return new Response(nullBody ? null : res.body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
  const target = { id, name, fetch: stubFetch };
  return new Proxy(target, {
    get(t, prop) {
      if (prop === "id") return t.id;
      if (prop === "name") return t.name;
      if (prop === "fetch") return t.fetch;
      // not thenable: `await stub` gives the stub
      if (typeof prop !== "string" || prop === "then" || prop === "constructor") return undefined;
      return (...args: unknown[]) => call(prop, args);
    },
  });
}

/** A DataCloneError from postMessage, said in terms of the call. */
function cloneError(className: string, method: string, err: unknown): Error {
  if (err instanceof Error && err.name === "DataCloneError") {
    return new TypeError(
      `${className}.${method}(): the arguments cannot be sent to the Durable Object: ` +
        `${err.message} (arguments must be structured-cloneable: no functions, class instances ` +
        "keep only their own data)",
    );
  }
  return err as Error;
}
