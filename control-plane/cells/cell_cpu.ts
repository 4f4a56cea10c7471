/**
 * CPU of a cell's worker threads, read by the control plane: `limits.cpu_ms` for a tenant in a
 * cell, and the verdict on a stopped worker's thread that keeps running there.
 *
 * Why here and not in the cell: Deno refuses reads under `/proc/self` and `/proc/<own pid>` to
 * anything but `--allow-all` (measured on 2.9.6, even with `--allow-read=/proc`), and a cell
 * never runs with all permissions, so the thread meter of an in-process worker
 * (`memory/thread_cpu.ts`) and the zombie watcher (`memory/zombie_threads.ts`) see nothing in a
 * cell. Before this, a cell's tenant had no CPU limit at all (a 1 s busy loop under `cpu_ms =
 * 100` answered 200), and a loop that outlived its timeout was recycled only after the control
 * plane had watched the whole process burn half a core for 500 ms.
 *
 * Deno names a worker's thread `worker-<n>`; the server (which runs with all permissions) reads
 * `/proc/<cell pid>/task/<tid>/schedstat` for the nanoseconds each spent on a CPU.
 *
 * @module
 */
import type { CellIncarnation } from "./cell_process.ts";
import { HEAVY_EVENT_NS, lowerPriority } from "../../runtime/memory/cpu_priority.ts";
import { threadCpuNs, threadIds } from "../../runtime/memory/thread_cpu.ts";

/** How often a cell with requests in flight is read, ms (as the in-process deadline sweep). */
const SWEEP_MS = 25;
/** A stopped worker's thread is judged this long after the stop, ms. */
export const ZOMBIE_VERDICT_MS = 150;

/** One worker thread of a cell: CPU time so far (ns) and whether it is running or runnable. */
export interface ThreadCpu {
  ns: number;
  running: boolean;
}

/**
 * Reads the worker threads of process `pid`: CPU time of each by tid. `names` caches which tids
 * are workers (a thread is named when it starts). Undefined where `/proc/<pid>/task` can't be
 * read (not Linux, or the process is gone).
 */
export function readWorkerThreads(
  pid: number,
  names: Map<number, boolean>,
  withState = false,
): Map<number, ThreadCpu> | undefined {
  const dir = `/proc/${pid}/task`;
  const tids = threadIds(pid);
  if (!tids) return undefined;
  const out = new Map<number, ThreadCpu>();
  for (const tid of tids) {
    let isWorker = names.get(tid);
    if (isWorker === undefined) {
      try {
        isWorker = Deno.readTextFileSync(`${dir}/${tid}/comm`).startsWith("worker-");
      } catch {
        continue; // it ended
      }
      names.set(tid, isWorker);
    }
    const ns = isWorker ? threadCpuNs(tid, pid) : undefined;
    if (ns === undefined) continue; // not a worker, or it ended
    let running = false;
    if (withState) {
      try {
        const stat = Deno.readTextFileSync(`${dir}/${tid}/stat`);
        running = stat[stat.lastIndexOf(")") + 2] === "R";
      } catch {
        continue; // it ended
      }
    }
    out.set(tid, { ns, running });
  }
  return out;
}

/** One request or event the meter charges while it is in flight. */
export interface MeteredEvent {
  /** CPU-ish time charged to it so far, ns. */
  cpuNs: number;
  /** Set when it passed the limit: the message its caller answers with. */
  breached?: string;
}

/** Options of {@linkcode CellCpuMeter}. */
export interface CellCpuMeterOptions {
  tenant: string;
  /** `limits.cpu_ms` (0: no limit; the threads are still followed for zombie verdicts). */
  cpuMs: number;
  /** The cell's current run. */
  run: () => CellIncarnation | undefined;
  /** An event passed the limit (its `breached` is set): the cell must be stopped. */
  onBreach: (run: CellIncarnation, reason: string) => void;
  /** Reads a process's worker threads (default {@linkcode readWorkerThreads}). */
  read?: typeof readWorkerThreads;
  /** Renices a thread (default `cpu_priority.ts`'s `lowerPriority`). */
  lowerPriority?: typeof lowerPriority;
}

/**
 * Charges the CPU a cell's worker threads use to the events in flight in it, in equal shares
 * (as in-process, and "CPU-ish" for the same reason: which event burned it is unknowable from
 * here), read every {@link SWEEP_MS} ms while any is in flight. An event past `cpuMs` is marked
 * breached and the cell is stopped through `onBreach`: ending the process is the only sure way
 * to stop a thread that runs synchronous code, so the other events in flight in that cell fail
 * with it (in-process, those on the same worker do). As in-process, an event that used 50 ms,
 * or 50 ms used while no event ended (a loop that the equal shares of the events queued behind
 * it would dilute, see `worker_handle.ts`), makes the threads that were busy meanwhile yield:
 * nice 19 for the rest of their life (the cell runs at nice 10 or idle priority already; this is
 * the same rule, one step further).
 *
 * @example
 * ```ts ignore
 * const meter = new CellCpuMeter({ tenant, cpuMs: 100, run: () => cell.current,
 *   onBreach: (run, why) => run.kill(why) });
 * const ev = meter.begin();
 * try { await relay(); } finally { meter.end(ev); }
 * if (ev.breached) throw new WorkyError("ERR_TENANT_CPU_LIMIT", ev.breached);
 * ```
 */
export class CellCpuMeter {
  readonly #o: CellCpuMeterOptions;
  readonly #read: typeof readWorkerThreads;
  readonly #events = new Set<MeteredEvent>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The pid the maps below belong to. */
  #pid: number | undefined;
  /** Which tids of `#pid` are worker threads. */
  #names = new Map<number, boolean>();
  /** Each worker thread's CPU at the last sweep, ns. */
  #last = new Map<number, number>();
  /** Threads of `#pid` moved to nice 19. */
  #yielded = new Set<number>();
  /** What the worker threads used since an event last ended, while events were in flight, ns. */
  #unansweredNs = 0;
  readonly #lowerPriority: typeof lowerPriority;

  constructor(options: CellCpuMeterOptions) {
    this.#o = options;
    this.#read = options.read ?? readWorkerThreads;
    this.#lowerPriority = options.lowerPriority ?? lowerPriority;
  }

  /** Starts charging a new event. */
  begin(): MeteredEvent {
    const ev: MeteredEvent = { cpuNs: 0 };
    if (this.#events.size === 0) this.#unansweredNs = 0; // idle CPU is nobody's
    this.#events.add(ev);
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.sweep(), SWEEP_MS);
      Deno.unrefTimer(timer as unknown as number);
      this.#timer = timer;
    }
    return ev;
  }

  /** Stops charging `ev` (the timer stops at the next reading with nothing in flight). */
  end(ev: MeteredEvent): void {
    if (this.#events.delete(ev)) this.#unansweredNs = 0;
  }

  /** One reading: charges what the worker threads used since the last one. */
  sweep(): void {
    if (this.#events.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer); // no setInterval/clearInterval per request of a serial client
      this.#timer = undefined;
    }
    const run = this.#o.run();
    if (!run || run.exit) return;
    const threads = this.#threads(run.pid);
    if (!threads) return;
    let used = 0;
    const busy: number[] = [];
    const last = this.#last;
    this.#last = new Map();
    for (const [tid, { ns }] of threads) {
      this.#last.set(tid, ns);
      const before = last.get(tid);
      if (before === undefined || ns <= before) continue; // a new thread: baseline only
      used += ns - before;
      busy.push(tid);
    }
    if (used === 0 || this.#events.size === 0) return;
    this.#unansweredNs += used;
    if (this.#unansweredNs >= HEAVY_EVENT_NS) this.#yield(busy);
    const share = used / this.#events.size;
    const limitNs = this.#o.cpuMs * 1e6;
    for (const ev of this.#events) {
      ev.cpuNs += share;
      if (ev.cpuNs >= HEAVY_EVENT_NS) this.#yield(busy);
      if (!this.#o.cpuMs || ev.cpuNs < limitNs || ev.breached) continue;
      ev.breached = `tenant "${this.#o.tenant}": an event used more than ${this.#o.cpuMs} ms of ` +
        `CPU (limits.cpu_ms); its cell was restarted`;
      this.#o.onBreach(run, `an event used more than ${this.#o.cpuMs} ms of CPU (limits.cpu_ms)`);
      return;
    }
  }

  /**
   * After a worker of `run` was stopped (a timeout or memory kill in the cell): resolves with
   * why the cell must be recycled when a worker thread keeps running. Judged {@link
   * ZOMBIE_VERDICT_MS} after the stop: a thread that used half a core since is spinning. One that
   * was runnable at both readings and got some CPU may be a spinner starved on a loaded machine
   * (the cell runs at idle priority once its tenant misbehaved) or a finite piece of synchronous
   * work finishing slowly there (measured: an 8 MiB response being built when its worker was
   * stopped for memory): it is judged again twice as long later, and spins if it still runs then.
   * Only threads this meter saw before the stop are judged when it saw any, so a replacement
   * worker still starting is not taken for a spinner. Undefined: nothing spins, or nothing can be
   * read.
   */
  async spinning(run: CellIncarnation): Promise<string | undefined> {
    let judged = this.#threads(run.pid, true);
    if (!judged) return undefined;
    const known = this.#pid === run.pid && this.#last.size > 0 ? new Set(this.#last.keys()) : null;
    const stoppedAt = performance.now();
    for (
      const [wait, last] of [[ZOMBIE_VERDICT_MS, false], [2 * ZOMBIE_VERDICT_MS, true]] as const
    ) {
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, wait));
      if (run.exit) return undefined;
      const now = this.#threads(run.pid, true);
      if (!now) return undefined;
      const elapsedNs = (performance.now() - t0) * 1e6;
      const runnable = new Map<number, ThreadCpu>();
      for (const [tid, a] of judged) {
        const b = now.get(tid);
        if (!b || (known && !known.has(tid))) continue;
        const share = (b.ns - a.ns) / elapsedNs;
        const starved = a.running && b.running && b.ns > a.ns;
        if (share >= 0.5 || (last && starved)) {
          return `a worker thread kept ${Math.round(share * 100)}% of a core busy ` +
            `${Math.round(performance.now() - stoppedAt)} ms after its worker was stopped`;
        }
        if (starved) runnable.set(tid, b);
      }
      if (runnable.size === 0) return undefined;
      judged = runnable; // runnable but starved: judged again later
    }
    return undefined;
  }

  #yield(tids: number[]) {
    for (const tid of tids) {
      if (this.#yielded.has(tid)) continue;
      this.#yielded.add(tid);
      this.#lowerPriority(tid, 19);
    }
  }

  #threads(pid: number, withState = false): Map<number, ThreadCpu> | undefined {
    if (pid !== this.#pid) {
      this.#pid = pid;
      this.#names = new Map();
      this.#last = new Map();
      this.#yielded = new Set();
    }
    return this.#read(pid, this.#names, withState);
  }
}
