/** Shared setup of the KV binding tests: real libSQL file, real host plugin, manual clock. */
import { openDatabase } from "../../../../control-plane/storage/database.ts";
import { LibsqlKvStore } from "../../../../control-plane/storage/kv_store.ts";
import { kvPlugin } from "../../../../runtime/bindings/kv/host.ts";
import type { BindingHost, RpcCall } from "../../../../runtime/bindings/types.ts";
import { ManualClock } from "../../../../runtime/clock.ts";
import { WorkyError } from "../../../../runtime/errors.ts";

/** 2023-11-14T22:13:20Z, a whole second. */
export const START = 1_700_000_000_000;

export interface KvHarness {
  clock: ManualClock;
  storage: LibsqlKvStore;
  /** A host for namespace `namespace` (binding name `CACHE` unless told). */
  host(namespace?: string, binding?: string): BindingHost;
  close(): Promise<void>;
}

export async function openKvHarness(): Promise<KvHarness> {
  const dir = await Deno.makeTempDir({ prefix: "worky-kv-binding-" });
  const database = await openDatabase(`file:${dir}/kv.db`);
  const storage = new LibsqlKvStore(database.db);
  const clock = new ManualClock(START);
  return {
    clock,
    storage,
    host: (namespace = "tenant:CACHE", binding = "CACHE") =>
      kvPlugin.createHost(
        { name: binding, kind: "kv", config: { namespace } },
        { tenant: "tenant", clock, services: { kv: storage } },
      ),
    async close() {
      database.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * An in-process RPC: arguments and results are structured-cloned (with the
 * transfer list) as a MessagePort would, and errors cross as `{ code, message }`.
 */
export function directRpc(hosts: Record<string, BindingHost>): RpcCall {
  return async (binding, method, args, transfer) => {
    const host = hosts[binding];
    if (!host) throw new Error(`no binding ${binding}`);
    const sent = structuredClone(args, { transfer: transfer ?? [] });
    let result: unknown;
    try {
      result = await host.call(method, sent, { tenant: "tenant" });
    } catch (error) {
      const payload = WorkyError.from(error).toJSON();
      throw Object.assign(new Error(payload.message), { code: payload.code });
    }
    return structuredClone(result);
  };
}

/** The rejection of `promise` (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}
