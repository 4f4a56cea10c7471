/**
 * One version of one tenant, running: its bundle, its bindings' host sides and
 * its worker pool. Immutable; a new version is a new Deployment, and the old
 * one drains (in-flight events finish on the old code).
 */
import type { BindingHost, BindingSpec } from "./bindings/types.ts";
import type { HeaderPairs, WorkerLimits, WorkerPermissions } from "./protocol.ts";
import {
  EGRESS_RPC,
  type EgressConfig,
  egressHost,
  EgressPolicy,
  type Resolver,
} from "./egress.ts";
import type { EgressProxyGrant } from "./egress_proxy.ts";
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

/**
 * The egress policy of `spec` (its `egress` section, or its `net` grant with no private
 * addresses allowed), resolving names with `resolve` (default the system resolver). One
 * definition for the in-process guard and for the control plane's proxy serving a cell.
 *
 * @example
 * ```ts ignore
 * const policy = egressPolicyOf(spec);
 * await policy.check("api.example.com", 443);
 * ```
 */
export function egressPolicyOf(spec: DeploymentSpec, resolve?: Resolver): EgressPolicy {
  return new EgressPolicy(spec.egress ?? { net: spec.permissions.net, allowPrivate: [] }, {
    resolve,
  });
}

export class Deployment {
  readonly startedAt = Date.now();
  private constructor(
    readonly spec: DeploymentSpec,
    readonly pool: WorkerPool,
    private readonly egressGrant?: EgressProxyGrant,
  ) {}

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
    const policy = egressPolicyOf(spec, rt.egressResolver);
    hosts.set(EGRESS_RPC, egressHost(policy));
    // fetch and WebSocket go through the egress proxy, which dials what the policy checked
    const proxy = spec.permissions.net === false
      ? undefined
      : rt.egressProxy?.register(spec.tenant, policy);
    let permissions = spec.permissions;
    if (proxy && Array.isArray(permissions.net)) {
      // an allowlist tenant needs the proxy's address to build its client; the guards refuse it
      permissions = { ...permissions, net: [...permissions.net, `127.0.0.1:${proxy.port}`] };
    }
    // deno-lint-ignore prefer-const -- binding hosts above reach the pool through a closure
    let pool: WorkerPool;
    pool = new WorkerPool({
      tenant: spec.tenant,
      permissions,
      init: {
        tenant: spec.tenant,
        code: spec.code,
        vars: secrets ? { ...spec.vars, ...secrets } : spec.vars,
        bindings: spec.bindings,
        limits: spec.workerLimits,
        egressProxy: proxy &&
          { port: proxy.port, username: proxy.username, password: proxy.password },
      },
      bindings: hosts,
      limits: spec.limits,
      factory: rt.factory,
      logger: rt.logger,
      watchdog: rt.watchdog,
      clock: rt.clock,
      onNeedsCell: (move) => rt.onNeedsCell?.(spec.tenant, move),
    });
    try {
      await pool.warm();
    } catch (err) {
      await pool.drain(0);
      proxy?.release();
      throw err;
    }
    return new Deployment(spec, pool, proxy);
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
      const worker = this.pool.pickSoon();
      if (worker instanceof Promise) { // a cold start waits its turn to spawn
        return worker.then(() => this.fetch(request, requestId, headers));
      }
      return worker.fetch(request, requestId, headers);
    } catch (err) { // pick() refuses (crash-loop cooldown, shutting down): reject, never throw
      return Promise.reject(err);
    }
  }

  /** Runs a non-fetch event handler (`scheduled`, `queue`, …). */
  event(kind: string, payload: unknown, requestId: string): Promise<unknown> {
    try {
      const worker = this.pool.pickSoon();
      if (worker instanceof Promise) return worker.then(() => this.event(kind, payload, requestId));
      return worker.event(kind, payload, requestId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Finishes in-flight events, stops the workers, then forgets the egress proxy credentials. */
  drain(graceMs?: number): Promise<void> {
    return this.pool.drain(graceMs).finally(() => this.egressGrant?.release());
  }

  stats() {
    return {
      tenant: this.tenant,
      version: this.version,
      workers: this.pool.size,
      inFlight: this.pool.inFlight,
      recycled: this.pool.recycled,
      /** Its worker threads run at SCHED_IDLE (a worker misbehaved, `worker_pool.ts`). */
      idle: this.pool.idle,
    };
  }
}
