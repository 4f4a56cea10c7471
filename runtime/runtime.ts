/**
 * The runtime as the control plane sees it: deploy a spec, get a Deployment
 * to dispatch events to. Owns the worker factory (pre-warmed spares) and the
 * services binding hosts use.
 */
import type { Clock } from "./clock.ts";
import { systemClock } from "./clock.ts";
import type { Logger } from "./logger.ts";
import { JsonLogger } from "./logger.ts";
import type { BindingServices } from "./bindings/types.ts";
import { WorkerFactory } from "./worker_factory.ts";
import { Deployment, type DeploymentSpec } from "./deployment.ts";
import { type MemoryWatchdog, memoryWatchdog } from "./memory/memory_watchdog.ts";
import type { CellMove } from "./worker_pool.ts";
import type { Resolver } from "./egress.ts";
import type { EgressPolicy } from "./egress.ts";
import { type EgressProxy, egressProxy, type EgressProxyGrant } from "./egress_proxy.ts";

/** Where tenants' connections go out (`egress_proxy.ts`); `register` is undefined-safe. */
export interface EgressProxyRegistry {
  /** Credentials for `tenant` with `policy`; undefined when there is no proxy to use. */
  register(tenant: string, policy: EgressPolicy): EgressProxyGrant | undefined;
}

export interface RuntimeOptions {
  logger?: Logger;
  clock?: Clock;
  services?: BindingServices;
  /** Pre-spawned spare workers per permission set (default 1). */
  spares?: number;
  /** Resolves names for tenants' egress policies (default: the system resolver; tests inject). */
  egressResolver?: Resolver;
  /**
   * An egress proxy elsewhere (default: this process's own, `egressProxy()`). A cell whose
   * process may not run one (an allowlist tenant) uses its control plane's.
   */
  egressProxy?: EgressProxyRegistry;
}

/** What a deployment needs from the runtime around it. */
export interface RuntimeContext {
  factory: WorkerFactory;
  logger: Logger;
  clock: Clock;
  services: BindingServices;
  /** The process's memory watchdog (synchronous allocation loops); see memory/memory_watchdog.ts. */
  watchdog?: MemoryWatchdog;
  /** The process's egress proxy (egress_proxy.ts); absent = tenants dial by name after the check. */
  egressProxy?: EgressProxyRegistry;
  /** Resolver of the egress policies (absent = the system resolver). */
  egressResolver?: Resolver;
  /**
   * Called when a tenant costs the others too much in this process (the rules:
   * `WorkerPoolOptions.onNeedsCell`), with why; the control plane may move the tenant into a
   * cell, resolving true once it serves from there (the pool starts no worker meanwhile).
   */
  onNeedsCell?: (tenant: string, move: CellMove) => Promise<boolean> | void;
}

export class Runtime implements RuntimeContext {
  readonly factory: WorkerFactory;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly services: BindingServices;
  readonly watchdog: MemoryWatchdog;
  readonly egressProxy: EgressProxyRegistry;
  readonly #ownProxy: EgressProxy | undefined;
  readonly egressResolver?: Resolver;
  /** See {@link RuntimeContext.onNeedsCell}; set by the control plane once it exists. */
  onNeedsCell?: (tenant: string, move: CellMove) => Promise<boolean> | void;

  constructor(options: RuntimeOptions = {}) {
    this.factory = new WorkerFactory({ spares: options.spares });
    this.logger = options.logger ?? new JsonLogger();
    this.clock = options.clock ?? systemClock;
    this.services = options.services ?? {};
    this.watchdog = memoryWatchdog();
    this.watchdog.logger ??= this.logger;
    this.watchdog.acquire();
    if (options.egressProxy) {
      this.egressProxy = options.egressProxy;
    } else {
      this.#ownProxy = this.egressProxy = egressProxy();
      this.#ownProxy.acquire();
    }
    this.egressResolver = options.egressResolver;
  }

  deploy(spec: DeploymentSpec): Promise<Deployment> {
    return Deployment.start(spec, this);
  }

  close(): void {
    this.watchdog.release();
    this.#ownProxy?.release();
    this.factory.close();
  }
}
