/**
 * Warm workers of one deployment. Picks the least-loaded worker, starts
 * another when all are at their concurrency target (up to `maxWorkers`),
 * replaces dead ones, and retires idle extras.
 */
import { EventTurns } from "./event_turns.ts";
import type { Logger } from "./logger.ts";
import type { InitMessage, WorkerPermissions } from "./protocol.ts";
import type { BindingHost } from "./bindings/types.ts";
import type { WorkerFactory } from "./worker_factory.ts";
import { type Misbehaviour, WorkerHandle } from "./worker_handle.ts";
import { WorkyError } from "./errors.ts";
import { CrashBackoff } from "./crash_backoff.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { MemoryWatchdog } from "./memory/memory_watchdog.ts";
import type { WorkerThread } from "./memory/zombie_threads.ts";

/** How long a tenant's worker threads stay at idle CPU priority after one misbehaved. */
export const IDLE_PENALTY_MS = 60_000;

/**
 * Bytes of big bodies (`BIG_BODY` and up, handed over as transferred buffers, and streamed
 * bodies once `BIG_BODY` of them arrived) one tenant's workers may put onto the host thread's
 * heap within a second before it should move into a cell. Measured (trace-gc, a tenant
 * answering 8 MB at 50 req/s): those buffers count as V8 external memory, and every 64 MB of it
 * starts a full mark-compact of the host heap (about 3 a second, each pausing the thread that
 * serves every tenant 1–9 ms); a cell's bodies reach the client through the relay without
 * entering this heap. So at most 64 MiB/s in-process: about one full GC a second.
 */
export const HOST_BODY_BYTES_PER_S = 64 * 1024 * 1024;

/** Why a tenant should leave this process for a cell (`WorkerPoolOptions.onNeedsCell`). */
export interface CellMove {
  /** What it did, for the log. */
  why: string;
  /** It broke a limit or crash-looped (its cell starts at SCHED_IDLE), rather than being heavy. */
  misbehaved: boolean;
}

export interface PoolLimits {
  timeoutMs: number;
  /** CPU-ish limit per event, ms (0 or absent = none; `WorkerHandleOptions.cpuMs`). */
  cpuMs?: number;
  maxWorkers: number;
  maxConcurrencyPerWorker: number;
  /** Workers kept warm while idle (0 = scale to zero). */
  minWorkers: number;
  /** Idle time after which extra workers above `minWorkers` stop. */
  idleMs: number;
}

export interface WorkerPoolOptions {
  tenant: string;
  permissions: WorkerPermissions;
  init: InitMessage;
  bindings: ReadonlyMap<string, BindingHost>;
  limits: PoolLimits;
  factory: WorkerFactory;
  logger: Logger;
  /** Time for the crash-loop backoff (`crash_backoff.ts`); default the wall clock. */
  clock?: Clock;
  /** Host-side memory watchdog every worker is registered with (`memory/memory_watchdog.ts`). */
  watchdog?: MemoryWatchdog;
  /**
   * Called, with why, when this tenant costs the others too much in this process: its workers
   * died twice within the crash backoff's window (10 s; no event completed in between; idle
   * retirement does not count), one was stopped for memory or CPU (a timeout that burned CPU
   * counts) or ended by `Deno.exit`, or its big bodies passed {@link HOST_BODY_BYTES_PER_S}.
   * The one list of these rules; the callers up the chain refer here. A promise returned is the
   * tenant's move into a cell: until it settles, the pool starts no worker (see
   * {@link WorkerPool.pick}); false resumes it.
   */
  onNeedsCell?: (move: CellMove) => Promise<boolean> | void;
}

export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  #workers: WorkerHandle[] = [];
  #closed = false;
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  /** Workers that died (crash, timeout, poison) since the pool started. */
  recycled = 0;
  /** Fails events fast while this tenant's workers keep dying (`crash_backoff.ts`). */
  readonly backoff: CrashBackoff;
  readonly #spawnedAt = new WeakMap<WorkerHandle, number>();
  /** Clock time until which this tenant's worker threads run at SCHED_IDLE (see #penalize). */
  #idleUntil = -Infinity;
  readonly #clock: Clock;

  constructor(options: WorkerPoolOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.backoff = new CrashBackoff({ tenant: options.tenant, clock: this.#clock });
    this.#o.factory.acquire(options.permissions);
    this.#idleTimer = setInterval(() => this.#shrink(), Math.max(1000, options.limits.idleMs / 2));
  }

  /** Starts `minWorkers` and waits until the first is ready (surfaces load errors). */
  async warm(): Promise<void> {
    const n = Math.max(1, this.#o.limits.minWorkers);
    const started = Array.from({ length: n }, () => this.#spawn());
    await started[0].ready;
  }

  /**
   * Like {@link pick}, but when starting the first worker would block this thread a second
   * time in one turn (`WorkerFactory.spawnTurn`), a promise to try again after instead: a burst
   * of cold starts then takes turns with everyone else's requests. A pool with a worker uses it,
   * even at its concurrency target, rather than wait, unless its tenant is moving into a cell
   * (see {@link WorkerPool.#moving}).
   */
  pickSoon(): WorkerHandle | Promise<void> {
    if (this.#moving && !this.#closed) {
      // then this pool is drained, or serves again; the events held meanwhile go one per turn
      return this.#afterMove.next(this.#moving);
    }
    if (!this.#closed && this.#workers.length === 0) {
      const wait = this.#o.factory.spawnTurn(this.#o.permissions);
      if (wait) return wait;
    }
    return this.pick();
  }

  /** The worker to run the next event on. */
  pick(): WorkerHandle {
    if (this.#closed) {
      throw new WorkyError("ERR_UNAVAILABLE", `tenant "${this.#o.tenant}" is shutting down`);
    }
    if (this.backoff.troubled) this.#checkBackoff();
    const ws = this.#workers;
    let best: WorkerHandle | undefined;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i];
      if (w.accepting && (!best || w.inFlight < best.inFlight)) best = w;
    }
    if (this.#moving) return best ?? this.#refuseWhileMoving();
    if (
      !best ||
      (best.inFlight >= this.#o.limits.maxConcurrencyPerWorker &&
        ws.length < this.#o.limits.maxWorkers)
    ) {
      best = this.#spawn();
    }
    return best;
  }

  /**
   * Set while the tenant moves into a cell of its own (`onNeedsCell`). Until the cell serves
   * (~0.5–2 s), none of its workers is started: `new Worker()` blocks this thread (≈ 11–15 ms
   * quiet, several times that while a storm loads the cores; measured, respawns of misbehaving
   * tenants were most of the host thread's time in the storm's first window). Its new events
   * wait for the move in {@link pickSoon} even while workers live here (its caller then finds
   * this pool drained and goes to the cell: the ingress retries a refused request on the
   * tenant's new deployment); {@link pick}, which can't wait, uses a live worker or refuses.
   * Why wait when a worker lives: a heavy tenant's bodies would keep landing on this heap, and a
   * misbehaving one's garbage is collected by V8's helper threads, which all isolates of this
   * process share at normal priority however low its own thread runs (traced, session 15: those
   * helpers took 30–35 ms of the two cores in a 50 ms stretch of a storm while the host thread
   * waited 17–34 ms for a core, while `hog`, whose events allocate ~400 MB each, was moving).
   */
  #moving: Promise<boolean> | undefined;

  /**
   * The events held by a move resume one per turn of the event loop, not all in the one turn
   * the cell became ready in: each is relayed to the cell (a request and a connection of its
   * own), and this thread serves every tenant. Measured (session 17, a storm's first 2 s, 2
   * cores, 8 moves in 2 runs): a moved tenant's held requests (up to the 16 its client kept
   * open) plus the swap held the event loop for 2.6–21.3 ms in one turn; 1.2–1.8 ms after (8.3
   * for `huge`, whose swap alone took 6.6).
   */
  readonly #afterMove = new EventTurns();

  #refuseWhileMoving(): never {
    const err = new WorkyError(
      "ERR_TENANT_CRASH_LOOP",
      `tenant "${this.#o.tenant}" is moving into a cell of its own; retry shortly`,
    );
    err.retryAfterMs = 1000;
    throw err;
  }

  /** Throws during a crash-loop cooldown; a worker that completed an event resets the backoff. */
  #checkBackoff() {
    const refusal = this.backoff.refusal();
    if (refusal) throw refusal;
    for (const w of this.#workers) {
      if (w.accepting && w.lastActive > (this.#spawnedAt.get(w) ?? Infinity)) {
        this.backoff.succeeded();
        return;
      }
    }
  }

  get size(): number {
    return this.#workers.length;
  }

  /** OS threads of the live workers, where known (Linux). */
  get threads(): WorkerThread[] {
    return this.#workers.flatMap((w) => w.thread ?? []);
  }

  get inFlight(): number {
    let n = 0;
    for (const w of this.#workers) n += w.inFlight;
    return n;
  }

  /** Stops taking events, waits for in-flight ones (bounded), then stops every worker. */
  async drain(graceMs = this.#o.limits.timeoutMs): Promise<void> {
    this.#closed = true;
    clearInterval(this.#idleTimer);
    const deadline = performance.now() + graceMs;
    while (this.inFlight > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const w of [...this.#workers]) w.kill("deployment drained");
    this.#o.factory.release(this.#o.permissions);
    this.#workers = [];
  }

  #spawn(): WorkerHandle {
    const o = this.#o;
    const handle = new WorkerHandle({
      tenant: o.tenant,
      worker: o.factory.take(o.tenant, o.permissions),
      init: o.init,
      bindings: o.bindings,
      logger: o.logger,
      timeoutMs: o.limits.timeoutMs,
      cpuMs: o.limits.cpuMs,
      onDead: (h, reason, misbehaved) => this.#onDead(h, reason, misbehaved),
      onBigBody: this.#bodies ? (bytes) => this.#onBigBody(bytes) : undefined,
    });
    if (this.idle) handle.demote();
    this.#workers.push(handle);
    this.#spawnedAt.set(handle, handle.lastActive);
    o.watchdog?.watch(handle, o.init.limits?.memoryMb ?? 0);
    return handle;
  }

  /** True while this tenant's worker threads run at SCHED_IDLE. */
  get idle(): boolean {
    return this.#clock.now() < this.#idleUntil;
  }

  /**
   * A worker of this tenant was stopped for something its own code did (an event past its time
   * or CPU limit, memory past its limit, `Deno.exit`): for {@link IDLE_PENALTY_MS} from now, its
   * live and new worker threads run at SCHED_IDLE, so until the penalty lapses its CPU is what
   * other tenants and the server leave over. The same rule cells follow
   * (`cells/cell_process.ts`), per thread.
   * Threads demoted stay so until they retire (going back needs privileges); workers started
   * after the penalty lapsed run normally.
   */
  #penalize(reason: string) {
    const was = this.idle;
    this.#idleUntil = this.#clock.now() + IDLE_PENALTY_MS;
    if (was) return;
    this.#o.logger.log({
      level: "warn",
      msg: `tenant "${this.#o.tenant}" runs at idle CPU priority for ${
        IDLE_PENALTY_MS / 1000
      } s: a worker was stopped because ${reason}`,
      tenant: this.#o.tenant,
    });
    for (const w of this.#workers) w.demote();
  }

  /** Big-body bytes in the current second (`start`: clock ms); undefined once judged. */
  #bodies: { start: number; bytes: number } | undefined = { start: -Infinity, bytes: 0 };

  #onBigBody(bytes: number) {
    const w = this.#bodies;
    if (!w || this.#moving || this.#closed) return;
    const now = this.#clock.now();
    if (now - w.start >= 1000) Object.assign(w, { start: now, bytes: 0 });
    w.bytes += bytes;
    if (w.bytes < HOST_BODY_BYTES_PER_S) return;
    this.#bodies = undefined; // asked once: a tenant that can't move isn't asked every second
    const mb = Math.round(w.bytes / 2 ** 20);
    this.#needsCell({
      why: `its responses put ${mb} MiB onto the host thread within 1 s ` +
        `(in-process at most ${HOST_BODY_BYTES_PER_S / 2 ** 20} MiB/s; a cell relays big bodies ` +
        `without the host's garbage collector)`,
      misbehaved: false,
    });
  }

  /** Asks the control plane to move this tenant into a cell; see {@link WorkerPool.#moving}. */
  #needsCell(cellMove: CellMove) {
    const move = this.#o.onNeedsCell?.(cellMove);
    if (!move) return;
    this.#moving = move;
    const resume = () => {
      if (this.#moving === move) this.#moving = undefined;
    };
    move.then((moved) => moved || resume(), resume);
  }

  #onDead(handle: WorkerHandle, reason: string, misbehaved: Misbehaviour | null) {
    const i = this.#workers.indexOf(handle);
    if (i < 0) return;
    this.#workers.splice(i, 1);
    if (this.#closed) return;
    if (misbehaved) this.#penalize(reason);
    this.recycled++;
    if (reason !== "idle") {
      const deaths = this.backoff.died();
      // memory and CPU kills are the tenant's own code burning what the process shares (a heap
      // in this process, cores), and Deno.exit ends a worker on purpose: one is enough (each
      // respawn blocks this thread in new Worker()); a timeout that burned no CPU may be a slow
      // upstream, so it takes two
      const own = misbehaved !== null && misbehaved !== "timeout";
      if ((deaths === 2 || (deaths === 1 && own)) && !this.#moving) {
        this.#needsCell({
          why: own
            ? `a worker was stopped: ${reason}`
            : `its workers died twice within 10 s (last: ${reason})`,
          misbehaved: true,
        });
      }
    }
    this.#o.logger.log({
      level: "warn",
      msg: `worker replaced: ${reason}`,
      tenant: this.#o.tenant,
    });
    // no respawn during a crash-loop cooldown: the next event after it spawns one
    if (
      this.#workers.length < this.#o.limits.minWorkers && !this.backoff.remainingMs() &&
      !this.#moving
    ) {
      this.#spawn();
    }
  }

  #shrink() {
    const now = performance.now();
    for (const w of [...this.#workers]) {
      if (this.#workers.length <= this.#o.limits.minWorkers) return;
      if (w.inFlight === 0 && w.sockets.size === 0 && now - w.lastActive > this.#o.limits.idleMs) {
        w.retire("idle"); // a worker relaying WebSockets is not idle
      }
    }
  }
}
