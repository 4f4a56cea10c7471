/**
 * The binding plugin contract. A binding is what a tenant sees on `env.NAME`
 * (KV namespace, Durable Object namespace, queue, …). Each kind lives in
 * `runtime/bindings/<kind>/`:
 *
 * - `host.ts` exports a {@link BindingPlugin}: it validates calls and serves
 *   them against the platform's storage, on the host side.
 * - `stub.worker.ts` exports a {@link StubFactory}: the object the tenant sees,
 *   which turns method calls into RPC over the worker's message channel.
 *
 * Both are listed once: `registry.ts` (host) and `stubs.worker.ts` (worker).
 */
import type { Clock } from "../clock.ts";
import type { KvStorage } from "./kv/storage.ts";
import type { WorkerHandle } from "../worker_handle.ts";

/** Serializable description of one binding, sent to the worker at start. */
export interface BindingSpec {
  /** The name on `env`, e.g. `"CART"`. */
  name: string;
  /** The plugin kind, e.g. `"kv"`. */
  kind: string;
  /** Kind-specific, structured-clone data (never secrets the stub must not see). */
  config: Record<string, unknown>;
}

/** Who is calling; for logging and scoping. */
export interface CallMeta {
  tenant: string;
  requestId?: string;
}

/** Storage and services the control plane hands to binding hosts. */
export interface BindingServices {
  kv?: KvStorage;
  [service: string]: unknown;
}

/** What a plugin's host side gets when a deployment starts. */
export interface HostBindingContext {
  tenant: string;
  clock: Clock;
  services: BindingServices;
  /** The deployment's workers (for bindings that send events to a chosen worker). */
  workers?: { pick(): WorkerHandle };
}

/** The host half of one binding on one deployment. */
export interface BindingHost {
  /** Serves one RPC call. Throw a `WorkyError` for errors the tenant should see. */
  call(method: string, args: unknown[], meta: CallMeta): Promise<unknown>;
}

/** A binding kind, host side. */
export interface BindingPlugin {
  kind: string;
  createHost(spec: BindingSpec, ctx: HostBindingContext): BindingHost;
}

/** RPC from a stub to its host: resolves with the host's result or rejects with its error. */
export type RpcCall = (
  binding: string,
  method: string,
  args: unknown[],
  transfer?: Transferable[],
) => Promise<unknown>;

/** A binding kind, worker side: builds the object the tenant sees on `env`. */
export type StubFactory = (spec: BindingSpec, rpc: RpcCall) => unknown;
