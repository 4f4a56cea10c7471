/**
 * Where Durable Objects live, host side, for the whole process: object key →
 * the one worker that holds its instance, its open store and its lease.
 *
 * - **Placement**: the first event of an object takes this process's lease on
 *   it (`ERR_CONFLICT` if another Worky process sharing the database holds
 *   it), opens its store, and sticks it to the least-loaded worker of the
 *   calling deployment. Every later event goes to that worker until it dies
 *   or the object is evicted; the choice is made synchronously, so
 *   concurrent first calls agree.
 * - **Eviction**: {@link DurableObjectDirectory.evictIdle} drops objects idle
 *   for `idleMs` (by the injected clock) and holding no open WebSocket
 *   (`evictIdle({ all: true })` closes them with 1001): the worker forgets the instance,
 *   the store file is closed, the lease released. The next call builds the
 *   object again from storage (its constructor runs again).
 * - **Leases** are renewed every `leaseMs / 3` (real time); an object whose
 *   lease was lost (the process stalled past it) is evicted.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { WorkyError } from "../errors.ts";
import type { WorkerHandle } from "../worker_handle.ts";
import { DO_EVENT, type ObjectEvent, type ObjectResult } from "../bindings/durable_object/types.ts";
import { type ObjectAddress, type ObjectBackend, objectKey, type ObjectStore } from "./backend.ts";

/** Picks a worker of a deployment (its pool). */
export interface WorkerSource {
  pick(): WorkerHandle;
}

/** Options of {@link DurableObjectDirectory}. */
export interface DirectoryOptions {
  backend: ObjectBackend;
  clock: Clock;
  logger?: Logger;
  /** Idle time after which an object leaves memory. Default 60 s. */
  idleMs?: number;
  /** Lease length. Default 30 s. */
  leaseMs?: number;
  /**
   * How long placing an object may wait for a lease another process holds, retrying every 100 ms
   * (default 0: `ERR_CONFLICT` at once). A cell waits: the process its tenant just left (the
   * control plane, or the cell of its previous deployment) releases its objects as it drains.
   */
  conflictWaitMs?: number;
  /**
   * Which holders (lease owners, from the backend's `ERR_CONFLICT`) are worth that wait
   * (default: all). The control plane waits only for its own cells.
   */
  waitsFor?: (holder: string) => boolean;
}

interface Entry {
  address: ObjectAddress;
  /** Lease taken and store open. */
  ready: Promise<ObjectStore>;
  store?: ObjectStore;
  handle?: WorkerHandle;
  inFlight: number;
  lastUsed: number;
  evicting?: Promise<void>;
}

let requestSeq = 0;

/**
 * The process-wide directory of live Durable Objects.
 *
 * @example
 * ```ts ignore
 * const directory = new DurableObjectDirectory({ backend, clock });
 * const result = await directory.dispatch(address, { op: "call", … }, pool);
 * await directory.evictIdle();
 * ```
 */
export class DurableObjectDirectory {
  readonly backend: ObjectBackend;
  readonly #clock: Clock;
  readonly #logger?: Logger;
  readonly idleMs: number;
  readonly leaseMs: number;
  readonly #conflictWaitMs: number;
  readonly #waitsFor: (holder: string) => boolean;
  readonly #objects = new Map<string, Entry>();
  /** `<tenant>/<class>` → the binding and workers of the latest deployment (for alarms). */
  readonly #classes = new Map<string, { binding: string; workers: WorkerSource }>();
  #renewTimer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(options: DirectoryOptions) {
    this.backend = options.backend;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.idleMs = options.idleMs ?? 60_000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.#conflictWaitMs = options.conflictWaitMs ?? 0;
    this.#waitsFor = options.waitsFor ?? (() => true);
    const timer = this.#renewTimer = setInterval(
      () => this.renewLeases().catch(() => {}),
      Math.max(1000, this.leaseMs / 3),
    );
    Deno.unrefTimer(timer);
  }

  /** Registers the deployment serving a class (the latest registration wins). */
  registerClass(tenant: string, className: string, binding: string, workers: WorkerSource): void {
    this.#classes.set(`${tenant}/${className}`, { binding, workers });
  }

  /** Delivers one event to an object, placing it first if it isn't live. */
  async dispatch(address: ObjectAddress, event: ObjectEvent, workers: WorkerSource) {
    if (this.#closed) throw new WorkyError("ERR_UNAVAILABLE", "Durable Objects are shutting down");
    const key = objectKey(address);
    let entry = this.#objects.get(key);
    while (entry?.evicting) {
      await entry.evicting;
      entry = this.#objects.get(key);
    }
    if (!entry) entry = this.#activate(key, address);
    entry.inFlight++;
    try {
      await entry.ready;
      let handle = entry.handle;
      if (!handle || handle.state === "dead") handle = entry.handle = workers.pick();
      await handle.ready;
      return await handle.event(DO_EVENT, event, `do-${++requestSeq}`) as ObjectResult;
    } finally {
      entry.inFlight--;
      entry.lastUsed = this.#clock.now();
    }
  }

  /** Fires an object's alarm through the deployment that serves its class. */
  fireAlarm(address: ObjectAddress, retryCount: number): Promise<ObjectResult> {
    const cls = this.#classes.get(`${address.tenant}/${address.className}`);
    if (!cls) {
      return Promise.reject(
        new WorkyError(
          "ERR_UNAVAILABLE",
          `no deployment of tenant "${address.tenant}" serves Durable Object class "${address.className}"`,
        ),
      );
    }
    return this.dispatch(address, {
      binding: cls.binding,
      className: address.className,
      id: address.id,
      op: "alarm",
      retryCount,
    }, cls.workers);
  }

  /** The open store of a live object (its worker calls storage through this). */
  async store(address: ObjectAddress): Promise<ObjectStore> {
    const entry = this.#objects.get(objectKey(address));
    if (!entry) {
      throw new WorkyError(
        "ERR_CONFLICT",
        `Durable Object ${
          objectKey(address)
        } is not live here; storage is only reachable from the object itself`,
      );
    }
    return entry.store ?? await entry.ready;
  }

  /** Objects in memory now. */
  get live(): number {
    return this.#objects.size;
  }

  /** True when the object is live in this process. */
  isLive(address: ObjectAddress): boolean {
    return this.#objects.has(objectKey(address));
  }

  /** Evicts objects idle for at least `idleMs` (or every idle object with `all`). */
  async evictIdle(options: { all?: boolean } = {}): Promise<number> {
    const now = this.#clock.now();
    const victims = [...this.#objects.values()].filter((e) =>
      !e.evicting && e.inFlight === 0 && e.store &&
      (options.all || (now - e.lastUsed >= this.idleMs && !this.#hasSockets(e)))
    );
    await Promise.all(victims.map((e) => this.#evict(e)));
    return victims.length;
  }

  /** Renews this process's leases; evicts objects whose lease is gone. */
  async renewLeases(): Promise<void> {
    if (this.#closed) return;
    const held = await this.backend.renewLeases(this.#clock.now());
    for (const [key, e] of this.#objects) {
      if (e.store && !e.evicting && !held.has(key)) {
        this.#logger?.log({ level: "warn", msg: `Durable Object ${key} lost its lease; evicted` });
        await this.#evict(e, false);
      }
    }
  }

  /** Evicts everything and stops renewing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#renewTimer);
    await Promise.allSettled([...this.#objects.values()].map((e) => e.ready));
    await Promise.all([...this.#objects.values()].map((e) => this.#evict(e)));
    this.#closed = true;
  }

  /** An object with open WebSockets stays in memory (they are relayed to its worker). */
  #hasSockets(e: Entry): boolean {
    const h = e.handle;
    return !!h && h.state !== "dead" &&
      h.sockets.countOwnedBy(`${e.address.className}/${e.address.id}`) > 0;
  }

  #activate(key: string, address: ObjectAddress): Entry {
    const entry: Entry = {
      address,
      ready: Promise.resolve() as unknown as Promise<ObjectStore>,
      inFlight: 0,
      lastUsed: this.#clock.now(),
    };
    entry.ready = (async () => {
      await this.#acquire(address);
      try {
        return entry.store = await this.backend.open(address);
      } catch (err) {
        await this.backend.releaseLease(address).catch(() => {});
        throw err;
      }
    })();
    entry.ready.catch(() => {
      if (this.#objects.get(key) === entry) this.#objects.delete(key);
    });
    this.#objects.set(key, entry);
    return entry;
  }

  /** Takes the object's lease, waiting up to `conflictWaitMs` while another process holds it. */
  async #acquire(address: ObjectAddress): Promise<void> {
    const deadline = performance.now() + this.#conflictWaitMs;
    for (;;) {
      try {
        return await this.backend.acquireLease(address, this.#clock.now());
      } catch (err) {
        const conflict = err instanceof WorkyError && err.code === "ERR_CONFLICT" &&
          this.#waitsFor(String((err as { holder?: string }).holder ?? ""));
        if (!conflict || this.#closed || performance.now() + 100 > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * Evicts every object of `tenant` once its events in flight are done (bounded by
   * `graceMs`, then regardless), releasing their leases: the tenant now runs elsewhere (a cell),
   * which takes them over.
   */
  async evictTenant(tenant: string, graceMs = 10_000): Promise<number> {
    const deadline = performance.now() + graceMs;
    let evicted = 0;
    for (;;) {
      const left = [...this.#objects.values()].filter((e) => e.address.tenant === tenant);
      if (left.length === 0) return evicted;
      const late = performance.now() >= deadline;
      const now = left.filter((e) => !e.evicting && (late || e.inFlight === 0));
      evicted += now.length;
      await Promise.all(now.map((e) => e.ready.then(() => this.#evict(e), () => {})));
      if (now.length < left.length) await new Promise((r) => setTimeout(r, 50));
    }
  }

  #evict(entry: Entry, release = true): Promise<void> {
    entry.evicting ??= (async () => {
      const key = objectKey(entry.address);
      const handle = entry.handle;
      if (handle && handle.state !== "dead") {
        try {
          await handle.event(
            DO_EVENT,
            {
              binding: "",
              className: entry.address.className,
              id: entry.address.id,
              op: "evict",
            } satisfies ObjectEvent,
            "do-evict",
          );
        } catch { /* the worker is gone: so is the instance */ }
      }
      await entry.store?.close();
      if (release) await this.backend.releaseLease(entry.address).catch(() => {});
      if (this.#objects.get(key) === entry) this.#objects.delete(key);
    })();
    return entry.evicting;
  }
}
