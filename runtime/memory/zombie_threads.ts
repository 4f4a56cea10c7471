/**
 * Zombie worker threads: measured on Deno 2.9.6, `worker.terminate()` does not stop a worker that
 * runs synchronous JavaScript (`while (true) {}`, counting or allocation loops, `await 0` loops;
 * `node:worker_threads` too; denoland/deno PR #35657). Its messages stop but its OS thread keeps
 * a core busy until the process exits. This module finds such threads.
 *
 * - **Which thread is which worker.** Deno names a worker's thread `worker-<n>`, n being the
 *   process-wide worker counter in creation order (Web Workers and `node:worker_threads` share
 *   it, so counting our own `new Worker`s would drift). The thread exists, already named, when
 *   `new Worker()` returns, so {@link trackWorkerThread} lists `/proc/self/task` before and after
 *   the constructor and keeps the new `worker-<n>` thread's tid (two directory reads per spawn;
 *   nothing on the request path).
 * - **Watching.** `WorkerHandle.kill` calls {@link ZombieThreads.watch} after `terminate()`. The
 *   watch samples the thread's CPU ticks (`/proc/self/task/<tid>/stat`) `settleMs` (1 s) after
 *   the kill and again `windowMs` (1 s) later, with one timer per watched worker; a thread that
 *   still exists then and used more than `minCpu` (50 %) of a core over that window is a zombie
 *   (a stopped worker's thread normally exits within milliseconds). On a loaded machine a
 *   spinning thread gets less than its core (and a demoted one only idle cores), so a thread
 *   runnable (`R`) at both samples that used any CPU in between counts too. Nothing runs while
 *   nothing was killed.
 * - **Demoting.** A stopped worker's thread that still exists 50 ms after
 *   `terminate()` is moved to SCHED_IDLE at once (`cpu_priority.ts`, per thread): until the
 *   verdict, and for as long as it spins after, it only gets cores nobody else wants. (Linux
 *   hands out thread ids in increasing order, so the id can't be another thread's yet.)
 * - What to do about one is the embedder's call (`onZombie`): `cli/run_server.ts` records the
 *   tenant in the quarantine file and, when supervised, asks for a graceful replacement process.
 */
import type { Logger } from "../logger.ts";
import { demoteToIdle } from "./cpu_priority.ts";
import { threadIds } from "./thread_cpu.ts";

/** A worker's OS thread. */
export interface WorkerThread {
  /** Linux thread id (`/proc/self/task/<tid>`). */
  tid: number;
  /** Its name, `worker-<n>`. */
  name: string;
}

/** A terminated worker's thread that keeps burning CPU. */
export interface Zombie extends WorkerThread {
  tenant: string;
  /** Why the worker was stopped (timeout, memory, …). */
  reason: string;
  /** Share of one core it used over the measuring window, 0–1. */
  cpu: number;
  /** Milliseconds from `terminate()` to the verdict. */
  afterMs: number;
}

const TASKS = "/proc/self/task";
/** A stopped worker's thread still there this long after `terminate()` goes to SCHED_IDLE. */
const DEMOTE_AFTER_MS = 50;
const WORKER_NAME = /^worker-(\d+)$/;

function threadName(tid: string | number): string | undefined {
  try {
    return Deno.readTextFileSync(`${TASKS}/${tid}/comm`).trim();
  } catch {
    return undefined;
  }
}

const threads = new WeakMap<Worker, WorkerThread>();

/**
 * Runs `create` (a `new Worker(…)`) and remembers the OS thread Deno started for it.
 *
 * @example
 * ```ts ignore
 * const w = trackWorkerThread(() => new Worker(url, { type: "module" }));
 * workerThread(w); // { tid: 12345, name: "worker-3" }
 * ```
 */
export function trackWorkerThread(create: () => Worker): Worker {
  const listed = threadIds();
  const worker = create();
  if (!listed) return worker; // no /proc (not Linux): nothing is tracked
  const before = new Set(listed);
  let found: WorkerThread | undefined;
  let highest = -1;
  for (const id of threadIds() ?? []) {
    if (before.has(id)) continue;
    const name = threadName(id);
    const m = name && WORKER_NAME.exec(name);
    // a thread the new worker spawns at once can inherit its name: the worker's own has the
    // lowest tid; another worker started meanwhile (another thread) has a higher n
    if (!m) continue;
    const n = Number(m[1]);
    if (n > highest || (n === highest && id < found!.tid)) {
      highest = n;
      found = { tid: id, name: name! };
    }
  }
  if (found) threads.set(worker, found);
  return worker;
}

/** The OS thread of a worker created through {@link trackWorkerThread}. */
export function workerThread(worker: Worker): WorkerThread | undefined {
  return threads.get(worker);
}

/** Thread state and CPU ticks, or undefined when the thread is gone (or renamed: tid reused). */
export interface ThreadSample {
  /** `R` running/runnable, `S` sleeping, … */
  state: string;
  /** utime + stime in clock ticks. */
  ticks: number;
}

/** Reads `/proc/self/task/<tid>/stat`. */
export function sampleThread(t: WorkerThread): ThreadSample | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${TASKS}/${t.tid}/stat`);
  } catch {
    return undefined;
  }
  const open = text.indexOf("("), close = text.lastIndexOf(")");
  if (text.slice(open + 1, close) !== t.name) return undefined;
  const f = text.slice(close + 2).split(" ");
  return { state: f[0], ticks: Number(f[11]) + Number(f[12]) };
}

/** Clock ticks per second of `/proc/self/task/<tid>/stat` times (USER_HZ: 100 on Linux). */
export const TICKS_PER_SECOND = 100;

export interface ZombieThreadsOptions {
  /** Wait after `terminate()` before the first sample (default 1000 ms). */
  settleMs?: number;
  /** Measuring window after that (default 1000 ms). */
  windowMs?: number;
  /** Share of a core over the window above which the thread is a zombie (default 0.5). */
  minCpu?: number;
  /** Reads a thread (default {@link sampleThread}). */
  sample?: (t: WorkerThread) => ThreadSample | undefined;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * Watches terminated workers' threads; reports the ones that keep running.
 *
 * @example
 * ```ts ignore
 * const zombies = zombieThreads();
 * zombies.onZombie = (z) => console.error(`${z.tenant}: ${z.name} at ${z.cpu * 100}% after terminate`);
 * worker.terminate();
 * zombies.watch(worker, "loop", "event exceeded 100 ms");
 * ```
 */
export class ZombieThreads {
  readonly #settleMs: number;
  readonly #windowMs: number;
  readonly #minCpu: number;
  readonly #sample: (t: WorkerThread) => ThreadSample | undefined;
  readonly #now: () => number;
  readonly #watching = new Set<number>();
  /** Zombies found so far (their threads may still be running: see {@link live}). */
  readonly found: Zombie[] = [];
  /** Called once per zombie found. */
  onZombie: ((zombie: Zombie) => void) | undefined;
  /** Gets one error line per zombie. */
  logger: Logger | undefined;

  constructor(options: ZombieThreadsOptions = {}) {
    this.#settleMs = options.settleMs ?? 1000;
    this.#windowMs = options.windowMs ?? 1000;
    this.#minCpu = options.minCpu ?? 0.5;
    this.#sample = options.sample ?? sampleThread;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Threads of stopped workers moved to idle CPU priority so far. */
  demoted = 0;

  /** Terminated workers whose verdict is pending. */
  get watching(): number {
    return this.#watching.size;
  }

  /**
   * Call right after `worker.terminate()`: the worker's thread is checked `settleMs + windowMs`
   * later. Resolves with the zombie, or undefined when the thread stopped (or is not tracked).
   */
  watch(worker: Worker, tenant: string, reason: string): Promise<Zombie | undefined> {
    const thread = threads.get(worker);
    if (!thread || this.#watching.has(thread.tid)) return Promise.resolve(undefined);
    this.#watching.add(thread.tid);
    const killedAt = this.#now();
    return (async () => {
      try {
        const demoteAfter = Math.min(DEMOTE_AFTER_MS, this.#settleMs);
        await sleep(demoteAfter);
        if (this.#sample(thread) && await demoteToIdle(thread.tid)) this.demoted++;
        await sleep(this.#settleMs - demoteAfter);
        const a = this.#sample(thread);
        if (!a) return undefined;
        const from = this.#now();
        await sleep(this.#windowMs);
        const b = this.#sample(thread);
        if (!b) return undefined;
        const seconds = Math.max(1e-3, (this.#now() - from) / 1000);
        const cpu = (b.ticks - a.ticks) / TICKS_PER_SECOND / seconds;
        // a spinning thread starved by a loaded machine (it runs at SCHED_IDLE by now) still
        // shows as runnable at both samples and gets some CPU
        const starved = a.state === "R" && b.state === "R" && b.ticks > a.ticks;
        if (cpu < this.#minCpu && !starved) return undefined;
        return this.#report({
          ...thread,
          tenant,
          reason,
          cpu: Math.round(cpu * 100) / 100,
          afterMs: Math.round(this.#now() - killedAt),
        });
      } finally {
        this.#watching.delete(thread.tid);
      }
    })();
  }

  /** Zombies whose thread still exists. */
  live(): Zombie[] {
    return this.found.filter((z) => this.#sample(z) !== undefined);
  }

  #report(z: Zombie): Zombie {
    this.found.push(z);
    this.logger?.log({
      level: "error",
      msg: `zombie thread: a stopped worker of tenant "${z.tenant}" (thread ${z.name}, tid ` +
        `${z.tid}) still uses ${Math.round(z.cpu * 100)}% of a core ${z.afterMs} ms after ` +
        `terminate() (stopped because: ${z.reason}); Deno cannot interrupt synchronous code ` +
        `in a worker, so only a new process gets that core back`,
      code: "ERR_TENANT_ZOMBIE",
      tenant: z.tenant,
      thread: z.name,
      tid: z.tid,
      cpu: z.cpu,
    });
    try {
      this.onZombie?.(z);
    } catch (err) {
      this.logger?.log({ level: "error", msg: `onZombie failed: ${(err as Error)?.stack ?? err}` });
    }
    return z;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    Deno.unrefTimer(t); // a pending verdict never keeps the process alive
  });
}

let shared: ZombieThreads | undefined;

/** The process's one zombie watcher. */
export function zombieThreads(): ZombieThreads {
  return shared ??= new ZombieThreads();
}
