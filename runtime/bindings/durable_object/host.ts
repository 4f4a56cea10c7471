/**
 * The host half of Durable Objects for one binding of one deployment.
 *
 * - `call` / `fetch` come from any worker of the tenant (a stub): they go to
 *   the one worker holding the object (`runtime/durable_objects/directory.ts`).
 * - `st.*` and `alarm.*` come from the worker holding the object (its
 *   `ctx.storage`): they run against the object's own store, in call order.
 * - `st.sql` answers through the caller's shared buffer: the worker is
 *   blocked in `Atomics.wait` until the result is written and notified.
 *
 * @module
 */
import { serialize } from "node:v8";
import { WorkyError } from "../../errors.ts";
import type {
  BindingHost,
  BindingPlugin,
  BindingSpec,
  CallMeta,
  HostBindingContext,
} from "../types.ts";
import type { DurableObjectDirectory, WorkerSource } from "../../durable_objects/directory.ts";
import type { ObjectAddress } from "../../durable_objects/backend.ts";
import { requireConfigString, requireService } from "../host_requirements.ts";
import { idNamespace, isValidId } from "./id.worker.ts";
import {
  MAX_BATCH_KEYS,
  type ObjectEvent,
  type WireListOptions,
  type WireRequest,
  type WireSqlResult,
  type WireWrite,
} from "./types.ts";

/** The Durable Object binding plugin (kind `durable_object`). */
export const durableObjectPlugin: BindingPlugin = {
  kind: "durable_object",
  createHost(spec: BindingSpec, ctx: HostBindingContext): BindingHost {
    const className = requireConfigString("Durable Object", spec, ctx, "className");
    const directory = requireService<DurableObjectDirectory>("Durable Object", spec, ctx, {
      service: "durableObjects",
      what: "Durable Objects (not available in this runtime)",
      code: "ERR_CONFIG_INVALID",
    });
    if (!ctx.workers) {
      throw new WorkyError("ERR_INTERNAL", `env.${spec.name}: the deployment has no worker source`);
    }
    directory.registerClass(ctx.tenant, className, spec.name, ctx.workers);
    return new DurableObjectBindingHost(spec.name, ctx.tenant, className, directory, ctx.workers);
  },
};

/**
 * Serves one Durable Object binding.
 *
 * @example
 * ```ts ignore
 * const host = new DurableObjectBindingHost("COUNTER", "shop", "Counter", directory, pool);
 * await host.call("call", [id, undefined, "increment", [1]], { tenant: "shop" });
 * ```
 */
export class DurableObjectBindingHost implements BindingHost {
  readonly #ns: string;
  constructor(
    readonly binding: string,
    readonly tenant: string,
    readonly className: string,
    private readonly directory: DurableObjectDirectory,
    private readonly workers: WorkerSource,
  ) {
    this.#ns = idNamespace(tenant, className);
  }

  call(method: string, args: unknown[], _meta: CallMeta): Promise<unknown> {
    if (!Array.isArray(args)) args = [];
    let address: ObjectAddress;
    try {
      address = this.#address(args[0]);
    } catch (err) {
      return Promise.reject(err);
    }
    switch (method) {
      case "call":
        return this.#dispatch(address, {
          op: "call",
          name: args[1] as string | undefined,
          method: String(args[2]),
          args: Array.isArray(args[3]) ? args[3] : [],
        });
      case "fetch":
        return this.#dispatch(address, {
          op: "fetch",
          name: args[1] as string | undefined,
          request: args[2] as WireRequest,
        });
      case "st.get":
        return this.#store(address, (s) => s.get(keys(args[1])));
      case "st.write":
        return this.#store(address, (s) => s.write(writes(args[1])));
      case "st.delete":
        return this.#store(address, (s) => s.delete(keys(args[1])));
      case "st.list":
        return this.#store(address, (s) => s.list((args[1] ?? {}) as WireListOptions));
      case "st.deleteAll":
        return this.#store(address, (s) => s.deleteAll());
      case "st.sql":
        return this.#sql(address, args[1], args[2], args[3]);
      case "alarm.get":
        return this.directory.backend.getAlarm(address);
      case "alarm.set": {
        const time = Number(args[1]);
        if (!Number.isFinite(time)) {
          return Promise.reject(
            new WorkyError("ERR_BAD_REQUEST", `setAlarm(): bad time ${args[1]}`),
          );
        }
        return this.directory.backend.setAlarm(address, time);
      }
      case "alarm.delete":
        return this.directory.backend.deleteAlarm(address);
      default:
        return Promise.reject(
          new WorkyError(
            "ERR_BAD_REQUEST",
            `Durable Object binding "${this.binding}" has no method ${method}`,
          ),
        );
    }
  }

  #address(id: unknown): ObjectAddress {
    if (typeof id !== "string" || !isValidId(this.#ns, id)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `env.${this.binding}: ${
          JSON.stringify(String(id)).slice(0, 80)
        } is not an id of class "${this.className}"`,
      );
    }
    return { tenant: this.tenant, className: this.className, id };
  }

  #dispatch(address: ObjectAddress, event: Record<string, unknown>): Promise<unknown> {
    return this.directory.dispatch(address, {
      ...event,
      binding: this.binding,
      className: this.className,
      id: address.id,
    } as ObjectEvent, this.workers);
  }

  async #store<T>(
    address: ObjectAddress,
    fn: (s: Awaited<ReturnType<DurableObjectDirectory["store"]>>) => Promise<T>,
  ): Promise<T> {
    return await fn(await this.directory.store(address));
  }

  async #sql(address: ObjectAddress, buffer: unknown, query: unknown, bindings: unknown) {
    if (!(buffer instanceof SharedArrayBuffer) || !buffer.growable) {
      throw new WorkyError("ERR_BAD_REQUEST", "st.sql needs a growable SharedArrayBuffer");
    }
    let result: WireSqlResult;
    try {
      const store = await this.directory.store(address);
      result = await store.sql(String(query), Array.isArray(bindings) ? bindings : []);
    } catch (err) {
      result = { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    let bytes: Uint8Array;
    try {
      bytes = serialize(result);
    } catch (err) {
      bytes = serialize({
        ok: false,
        message: `sql result cannot be sent: ${(err as Error).message}`,
      });
    }
    if (8 + bytes.length > buffer.maxByteLength) {
      bytes = serialize({
        ok: false,
        message: `sql result is larger than ${buffer.maxByteLength} bytes`,
      });
    }
    if (buffer.byteLength < 8 + bytes.length) buffer.grow(8 + bytes.length);
    new Uint8Array(buffer, 8, bytes.length).set(bytes);
    const control = new Int32Array(buffer, 0, 2);
    control[1] = bytes.length;
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
    return null;
  }
}

function keys(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((k) => typeof k !== "string")) {
    throw new WorkyError("ERR_BAD_REQUEST", "storage keys must be an array of strings");
  }
  if (value.length > MAX_BATCH_KEYS) {
    throw new WorkyError("ERR_BAD_REQUEST", `at most ${MAX_BATCH_KEYS} keys per call`);
  }
  return value;
}

function writes(value: unknown): WireWrite[] {
  if (
    !Array.isArray(value) ||
    value.some((w) =>
      !Array.isArray(w) || typeof w[0] !== "string" ||
      !(w[1] === null || w[1] instanceof Uint8Array)
    )
  ) {
    throw new WorkyError("ERR_BAD_REQUEST", "storage writes must be [key, bytes | null] pairs");
  }
  return value as WireWrite[];
}
