/**
 * The live deployments and the route table in front of them. A route resolves
 * to a tenant slot; a slot's `current` deployment is swapped atomically on
 * redeploy, so a request sees one version or the other, never a mix, and the
 * old version drains while its in-flight events finish.
 */
import type { TenantConfig } from "./config/types.ts";
import { RouteTable } from "./routing/route_table.ts";
import { Deployment } from "../runtime/deployment.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { CellMove } from "../runtime/worker_pool.ts";
import { bundleModule } from "../runtime/bundler.ts";
import { deploymentSpec } from "./deployment_spec.ts";
import { WorkyError } from "../runtime/errors.ts";
import type { CellDeployment } from "./cells/cell_deployment.ts";
import type { CellLauncher } from "./cells/cell_launcher.ts";
import type { DurableObjectDirectory } from "../runtime/durable_objects/directory.ts";

/** What a slot runs: workers in this process, or a cell process (`limits.isolation`). */
export type TenantDeployment = Deployment | CellDeployment;

/** One tenant's place in the route table. */
export interface TenantSlot {
  readonly config: TenantConfig;
  current: TenantDeployment;
  /** Local files the current bundle was built from (for the dev watcher). */
  inputs: string[];
  /** Cron expressions the current artifact's manifest declares (UTC); [] for source. */
  crons: string[];
}

/**
 * Runs `call` on the slot's current deployment. Refused with `ERR_UNAVAILABLE` because that one
 * was swapped out meanwhile (a deploy, a move into a cell: its pool refuses once drained, before
 * any worker saw the event), once more on the slot's new one. Requests, cron runs and queue
 * batches all go through it.
 */
export function onCurrent<T>(
  slot: TenantSlot,
  call: (deployment: TenantDeployment) => Promise<T>,
): Promise<T> {
  const deployment = slot.current;
  return call(deployment).catch((err) => {
    if ((err as WorkyError)?.code !== "ERR_UNAVAILABLE" || slot.current === deployment) throw err;
    return call(slot.current);
  });
}

/** A tenant's code, ready to deploy. */
export interface LoadedModule {
  code: string;
  /** Bundle hash prefix, or `name@version` for an artifact. */
  version: string;
  /** Local files it was built from (watched in dev); [] for artifacts. */
  inputs: string[];
  /** Cron triggers from an artifact's manifest (absent for source). */
  crons?: string[];
}

/** Produces a tenant's code; the default bundles `config.module` from source. */
export type ModuleLoader = (config: TenantConfig) => Promise<LoadedModule>;

async function bundleFromSource(config: TenantConfig): Promise<LoadedModule> {
  const bundle = await bundleModule(config.module);
  return { code: bundle.code, version: bundle.hash.slice(0, 12), inputs: bundle.inputs };
}

export class DeploymentManager {
  readonly #runtime: Runtime;
  readonly #loadModule: ModuleLoader;
  readonly #cells: CellLauncher | undefined;
  #slots = new Map<string, TenantSlot>();
  #routes = new RouteTable<TenantSlot>([]);

  constructor(
    runtime: Runtime,
    options: { loadModule?: ModuleLoader; cells?: CellLauncher } = {},
  ) {
    this.#runtime = runtime;
    this.#loadModule = options.loadModule ?? bundleFromSource;
    this.#cells = options.cells;
  }

  /**
   * Starts `code` as a next version of tenant `name` (module loaded, workers warm) without
   * routing to it: pass the result to {@linkcode swap}. A module that fails to load throws.
   */
  async start(name: string, code: LoadedModule): Promise<TenantDeployment> {
    const slot = this.#slots.get(name);
    if (!slot) throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${name}"`);
    await this.#cells?.forgetMove(name); // a deploy gives a moved tenant another chance here
    return await this.#deploy(slot.config, code);
  }

  /**
   * Bundles and starts every tenant. All or nothing: if any fails, the ones
   * started are stopped and one error lists every failure.
   */
  async deployAll(tenants: TenantConfig[]): Promise<void> {
    const results = await Promise.allSettled(tenants.map((t) => this.#build(t)));
    const failures = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    if (failures.length) {
      await Promise.all(
        results.flatMap((r) => r.status === "fulfilled" ? [r.value.current.drain(0)] : []),
      );
      throw new WorkyError(
        failures.every((f) => WorkyError.from(f).isUserError)
          ? "ERR_BUNDLE_INVALID"
          : "ERR_INTERNAL",
        failures.map((f) => f instanceof Error ? f.message : String(f)).join("\n"),
      );
    }
    const slots = results.map((r) => (r as PromiseFulfilledResult<TenantSlot>).value);
    this.#slots = new Map(slots.map((s) => [s.config.name, s]));
    this.#routes = new RouteTable(
      slots.flatMap((s) => s.config.routes.map((r) => [r, s] as [string, TenantSlot])),
    );
  }

  /**
   * Rebuilds one tenant from its module and swaps it in. On failure the
   * running version keeps serving and the error is thrown.
   */
  async redeploy(name: string): Promise<TenantDeployment> {
    const slot = this.#slots.get(name);
    if (!slot) throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${name}"`);
    await this.#cells?.forgetMove(name); // a deploy gives a moved tenant another chance here
    const next = await this.#build(slot.config);
    return this.swap(name, next.current, next);
  }

  /**
   * Moves a tenant that runs in this process into a cell of its own, with the code it runs now
   * (no rebuild, so a registry deploy stays what it is). Called when a worker of it left a
   * zombie thread (it is on the quarantine record by then, which is what `cells.wants` reads),
   * and with `move` when it costs the others too much in-process (the rules:
   * `WorkerPoolOptions.onNeedsCell`): then only for `isolation = "auto"`, and until its next
   * deploy or until the operator starts Worky again (a replacement or restart by the same
   * supervisor keeps the move: `cell_moves.ts`). A tenant that misbehaved starts at SCHED_IDLE.
   * Resolves false (and changes nothing) when it already runs in a cell, cells are off, the
   * database is `:memory:`, a move is under way, or it was redeployed meanwhile.
   */
  async isolate(name: string, move?: CellMove): Promise<boolean> {
    const slot = this.#slots.get(name);
    const current = slot?.current;
    const cells = this.#cells;
    if (!slot || !cells || !(current instanceof Deployment)) return false;
    if (this.#isolating.has(name)) return false; // a move is under way (one cell, not two)
    this.#isolating.add(name);
    try {
      return await this.#isolate(cells, name, slot, current, move);
    } finally {
      this.#isolating.delete(name);
    }
  }

  readonly #isolating = new Set<string>();

  async #isolate(
    cells: CellLauncher,
    name: string,
    slot: TenantSlot,
    current: Deployment,
    move: CellMove | undefined,
  ): Promise<boolean> {
    const ok = move ? cells.mayMove(slot.config, move.why) : await cells.wants(slot.config);
    if (!ok) return false;
    const idle = move?.misbehaved ?? true; // a zombie thread is the worst misbehaviour
    const next = await cells.deploy(current.spec, slot.config.limits.memoryMb, idle);
    if (slot.current !== current) { // redeployed while the cell started: that version wins
      await next.drain(0);
      return false;
    }
    this.swap(name, next, { inputs: slot.inputs, crons: slot.crons });
    if (move) void cells.recordMove(name, move);
    return true;
  }

  /**
   * Swaps a started deployment in; the previous one drains. `code` tells what it was
   * built from (watched inputs, manifest cron triggers).
   */
  swap(
    name: string,
    next: TenantDeployment,
    code: Pick<LoadedModule, "inputs" | "crons"> = { inputs: [] },
  ): TenantDeployment {
    const slot = this.#slots.get(name);
    if (!slot) throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${name}"`);
    const old = slot.current;
    slot.current = next;
    if (old instanceof Deployment && !(next instanceof Deployment)) {
      // its Durable Objects live in the cell from now on: once their events here finish, they
      // leave this process and release their leases, which the cell waits for
      const directory = this.#runtime.services.durableObjects as DurableObjectDirectory | undefined;
      directory?.evictTenant(name).catch(() => {});
    }
    slot.inputs = code.inputs;
    const cronsChanged = String(slot.crons) !== String(code.crons ?? []);
    slot.crons = code.crons ?? [];
    old.drain().catch(() => {});
    if (cronsChanged) { for (const listener of this.#cronListeners) listener(); }
    return next;
  }

  readonly #cronListeners: (() => void)[] = [];

  /** Calls `listener` when a swap changed a tenant's manifest cron triggers. */
  onCronChange(listener: () => void): void {
    this.#cronListeners.push(listener);
  }

  /**
   * The tenants' configs with the cron triggers of their current artifacts added
   * (UTC, skip missed runs), what the scheduler runs.
   */
  effectiveTenants(): TenantConfig[] {
    return this.list().map((slot) => {
      const own = new Set(slot.config.cron.map((c) => c.schedule));
      const extra = slot.crons.filter((schedule) => !own.has(schedule))
        .map((schedule) => ({ schedule, timezone: "UTC", catchUp: "skip" as const }));
      return extra.length ? { ...slot.config, cron: [...slot.config.cron, ...extra] } : slot.config;
    });
  }

  /** The slot serving `host` + `path`, if any. */
  route(host: string, path: string): TenantSlot | undefined {
    return this.#routes.match(host, path);
  }

  get(name: string): TenantSlot | undefined {
    return this.#slots.get(name);
  }

  list(): TenantSlot[] {
    return [...this.#slots.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.#slots.values()].map((s) => s.current.drain(1000)));
    this.#slots.clear();
  }

  async #build(config: TenantConfig): Promise<TenantSlot> {
    const loaded = await this.#loadModule(config);
    const current = await this.#deploy(config, loaded);
    return { config, current, inputs: loaded.inputs, crons: loaded.crons ?? [] };
  }

  /**
   * In a cell when the tenant asks for one, is quarantined or was moved by an earlier process of
   * this supervisor run (`CellLauncher.wants`); else workers in this process.
   */
  async #deploy(config: TenantConfig, code: LoadedModule): Promise<TenantDeployment> {
    const spec = deploymentSpec(config, code);
    const start = await this.#cells?.wants(config);
    if (start) return await this.#cells!.deploy(spec, config.limits.memoryMb, start.idle);
    return await this.#runtime.deploy(spec);
  }
}
