/**
 * One version of one tenant, running: its bundle, its bindings' host sides and
 * its worker pool. Immutable; a new version is a new Deployment, and the old
 * one drains (in-flight events finish on the old code).
 */
import type { BindingHost, BindingSpec } from "./bindings/types.ts";
import type { HeaderPairs, WorkerLimits, WorkerPermissions } from "./protocol.ts";
import { EGRESS_RPC, type EgressConfig, egressHost, EgressPolicy } from "./egress.ts";
import { type PoolLimits, WorkerPool } from "./worker_pool.ts";
import { WorkyError } from "./errors.ts";
import { PLUGINS } from "./bindings/registry.ts";
import type { RuntimeContext } from "./runtime.ts";

/** Where a tenant's decrypted secrets come from (`control-plane/secrets/secret_store.ts`). */
interface SecretSource {
  forTenant(tenant: string): Promise<Record<string, string>>;
}

export interface DeploymentSpec {
  tenant: string;
  /** Identifies the code (bundle hash or registry version). */
  version: string;
  /** Bundled ES module source. */
  code: string;
  permissions: WorkerPermissions;
  vars: Record<string, unknown>;
  bindings: BindingSpec[];
  limits: PoolLimits;
  /** Egress policy; default: the `net` grant, no private addresses. */
  egress?: EgressConfig;
  /** Limits the worker enforces on itself (subrequests, soft memory). */
  workerLimits?: WorkerLimits;
}

export class Deployment {
  readonly startedAt = Date.now();
  private constructor(readonly spec: DeploymentSpec, readonly pool: WorkerPool) {}

  /** Starts the pool and waits for the module to load: a broken module fails here. */
  static async start(spec: DeploymentSpec, rt: RuntimeContext): Promise<Deployment> {
    const hosts = new Map<string, BindingHost>();
    for (const b of spec.bindings) {
      const plugin = PLUGINS[b.kind];
      if (!plugin) {
        throw new WorkyError(
          "ERR_CONFIG_INVALID",
          `tenant "${spec.tenant}": env.${b.name}: unknown binding kind "${b.kind}"`,
        );
      }
      hosts.set(
        b.name,
        plugin.createHost(b, {
          tenant: spec.tenant,
          clock: rt.clock,
          services: rt.services,
          workers: { pick: () => pool.pick() },
        }),
      );
    }
    // secrets join the vars here, at start: never in the spec, the registry or a bundle
    const secrets = await (rt.services.secrets as SecretSource | undefined)?.forTenant(spec.tenant);
    const egress = spec.egress ?? { net: spec.permissions.net, allowPrivate: [] };
    hosts.set(EGRESS_RPC, egressHost(new EgressPolicy(egress)));
    // deno-lint-ignore prefer-const -- binding hosts above reach the pool through a closure
    let pool: WorkerPool;
    pool = new WorkerPool({
      tenant: spec.tenant,
      permissions: spec.permissions,
      init: {
        tenant: spec.tenant,
        code: spec.code,
        vars: secrets ? { ...spec.vars, ...secrets } : spec.vars,
        bindings: spec.bindings,
        limits: spec.workerLimits,
      },
      bindings: hosts,
      limits: spec.limits,
      factory: rt.factory,
      logger: rt.logger,
      watchdog: rt.watchdog,
    });
    try {
      await pool.warm();
    } catch (err) {
      await pool.drain(0);
      throw err;
    }
    return new Deployment(spec, pool);
  }

  get tenant(): string {
    return this.spec.tenant;
  }

  get version(): string {
    return this.spec.version;
  }

  /** Runs the tenant's fetch handler. Rejects with a WorkyError (timeout, crash, exception). */
  fetch(request: Request, requestId: string, headers?: HeaderPairs): Promise<Response> {
    try {
      return this.pool.pick().fetch(request, requestId, headers);
    } catch (err) { // pick() refuses (crash-loop cooldown, shutting down): reject, never throw
      return Promise.reject(err);
    }
  }

  /** Runs a non-fetch event handler (`scheduled`, `queue`, …). */
  event(kind: string, payload: unknown, requestId: string): Promise<unknown> {
    try {
      return this.pool.pick().event(kind, payload, requestId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  drain(graceMs?: number): Promise<void> {
    return this.pool.drain(graceMs);
  }

  stats() {
    return {
      tenant: this.tenant,
      version: this.version,
      workers: this.pool.size,
      inFlight: this.pool.inFlight,
      recycled: this.pool.recycled,
    };
  }
}
