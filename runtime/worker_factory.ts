/**
 * Creates tenant workers. Keeps one pre-spawned spare per permission set, so
 * a cold tenant skips the ~10 ms of thread start and bootstrap load: a spare
 * already runs the bootstrap and only waits for its tenant's init message.
 * Permissions are fixed when a worker is created, hence the key.
 */
import { permissionsKey } from "./permissions.ts";
import { W_BOOTED, type WorkerPermissions } from "./protocol.ts";
import { trackWorkerThread } from "./memory/zombie_threads.ts";

const BOOTSTRAP = new URL("./bootstrap.worker.ts", import.meta.url);
/** How long after a spare is taken its replacement is spawned, ms. */
const SPARE_REFILL_DELAY_MS = 50;
/** Permission sets that keep spares while no deployment uses them. */
const MAX_KEYS = 16;

export interface WorkerFactoryOptions {
  /** Spares kept per distinct permission set (0 disables pre-warming). */
  spares?: number;
}

export class WorkerFactory {
  readonly #spares = new Map<string, Worker[]>();
  /** Deployments per permission set; spares live while a set has users. */
  readonly #users = new Map<string, number>();
  readonly #target: number;
  /** Deferred spare refills per permission set. */
  readonly #refills = new Map<string, Promise<void>>();
  #closed = false;

  constructor(options: WorkerFactoryOptions = {}) {
    this.#target = options.spares ?? 1;
  }

  /** A `new Worker()` ran in this turn of the event loop (see {@link spawnTurn}). */
  #spawnedThisTurn = false;
  #nextTurn: Promise<void> | undefined;

  /**
   * `new Worker()` blocks this thread ~11–15 ms (measured), and this thread serves every
   * tenant's requests: a burst of cold starts (a storm of tenants waking at once) spawning
   * back to back would stall it for all of them. So at most one spawn runs per turn of the
   * event loop. Undefined: {@link take} may run now (a spare is ready, or nothing was spawned
   * this turn); else a promise for the next turn, when the caller tries again.
   */
  spawnTurn(permissions: WorkerPermissions): Promise<void> | undefined {
    if (!this.#spawnedThisTurn || this.#spares.get(permissionsKey(permissions))?.length) {
      return undefined;
    }
    return this.#nextTurn;
  }

  #spawned(): void {
    if (this.#spawnedThisTurn) return;
    this.#spawnedThisTurn = true;
    this.#nextTurn = new Promise((resolve) =>
      setTimeout(() => {
        this.#spawnedThisTurn = false;
        resolve();
      }, 0)
    );
  }

  /** A worker with exactly these permissions, running the bootstrap. */
  take(tenant: string, permissions: WorkerPermissions): Worker {
    const key = permissionsKey(permissions);
    const spare = this.#spares.get(key)?.pop();
    if (!spare) {
      this.#spawned();
      return spawn(tenant, permissions);
    }
    // The replacement waits until this cold start has answered: `new Worker()` blocks
    // the main thread for ≈ 11 ms (measured), which would land on this request.
    if (!this.#refills.has(key)) {
      this.#refills.set(
        key,
        new Promise((resolve) =>
          setTimeout(() => {
            this.#refills.delete(key);
            this.prewarm(permissions);
            resolve();
          }, SPARE_REFILL_DELAY_MS)
        ),
      );
    }
    return spare;
  }

  /** Registers a user of this permission set and makes sure a spare exists. */
  acquire(permissions: WorkerPermissions): void {
    const key = permissionsKey(permissions);
    this.#users.set(key, (this.#users.get(key) ?? 0) + 1);
    this.prewarm(permissions);
  }

  /** Makes sure a spare exists for this permission set. */
  prewarm(permissions: WorkerPermissions): void {
    if (this.#closed || this.#target === 0) return;
    const key = permissionsKey(permissions);
    let list = this.#spares.get(key);
    if (!list) this.#spares.set(key, list = []);
    while (list.length < this.#target) {
      this.#spawned();
      list.push(spawnSpare(permissions));
    }
  }

  /**
   * A deployment of this permission set stopped. Its spare stays (the next tenant
   * with the same grants starts from it) unless more than {@link MAX_KEYS} unused
   * permission sets hold spares.
   */
  release(permissions: WorkerPermissions): void {
    const key = permissionsKey(permissions);
    const users = (this.#users.get(key) ?? 1) - 1;
    if (users > 0) this.#users.set(key, users);
    else this.#users.delete(key);
    for (const [k, list] of this.#spares) {
      if (this.#spares.size <= MAX_KEYS) break;
      if (this.#users.has(k)) continue;
      for (const w of list) w.terminate();
      this.#spares.delete(k);
    }
  }

  /** Resolves when every spare of this permission set has booted (benchmarks, tests). */
  async sparesReady(permissions: WorkerPermissions): Promise<void> {
    await this.#refills.get(permissionsKey(permissions));
    await Promise.all(
      (this.#spares.get(permissionsKey(permissions)) ?? []).map((w) => booted.get(w)),
    );
  }

  /** Number of idle spares (for stats). */
  get spareCount(): number {
    let n = 0;
    for (const list of this.#spares.values()) n += list.length;
    return n;
  }

  close(): void {
    this.#closed = true;
    for (const list of this.#spares.values()) for (const w of list) w.terminate();
    this.#spares.clear();
  }
}

/** Resolves when a spare's bootstrap has loaded (it posts W_BOOTED). */
const booted = new WeakMap<Worker, Promise<void>>();

function spawnSpare(permissions: WorkerPermissions): Worker {
  const w = spawn("spare", permissions);
  booted.set(
    w,
    new Promise((resolve) => {
      w.onmessage = (e: MessageEvent) => {
        if (e.data?.[0] === W_BOOTED) resolve();
      };
    }),
  );
  return w;
}

function spawn(name: string, permissions: WorkerPermissions): Worker {
  // the OS thread is remembered so a terminated-but-still-running worker can be found
  return trackWorkerThread(() =>
    new Worker(BOOTSTRAP, {
      type: "module",
      name: `worky:${name}`,
      // every key spelled out by toWorkerPermissions(); never "inherit"
      deno: { permissions },
    } as WorkerOptions)
  );
}
