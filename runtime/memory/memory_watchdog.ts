/**
 * Memory, layer 1b: the host's watchdog for what the in-worker heap sampler
 * (`heap_sampler.worker.ts`) cannot see: a tenant allocating in a synchronous
 * loop never yields to its sampler. Process-wide (RSS is per process): every
 * Runtime registers its workers here.
 *
 * Every `intervalMs` (25 ms), and only while some worker has an event in flight, it reads
 * the process RSS (`/proc/self/statm` through a kept-open file: ~4 µs; `Deno.memoryUsage()`
 * costs ~10 µs). A busy worker that sent no message for `minSilentMs` (100 ms) is *silent*;
 * each keeps the lowest RSS seen since it went silent. When RSS passes the budget (RSS at start +
 * the sum of live workers' `memory_mb` + `slackMb`), the silent busy worker under which the
 * process grew most is stopped, if that growth reached its own `memory_mb` (`slackMb` without
 * one): its events fail with 503 `ERR_TENANT_MEMORY`, the pool replaces it.
 *
 * Measured on Deno 2.9.6: `worker.terminate()` does NOT interrupt a worker running synchronous
 * JavaScript (its thread keeps running, allocating until V8's per-isolate heap limit aborts the
 * process: 4 GiB by default here, reached 4–13 s after the loop starts at ~1 GB/s). So after a
 * kill the watchdog keeps reading RSS for `runawayWindowMs`; if the process grows another
 * `runawayMb` the thread is a runaway and `onRunaway` is called (the CLI then exits so its
 * supervisor restarts the server at once instead of waiting for the abort). During that window
 * nobody else is blamed for the growth (a healthy worker starved of CPU is silent too).
 *
 * Memory outside V8's heap (WebAssembly memories, Blob bytes) never shows in a worker's heap
 * sampler, however the tenant yields; so each sample also charges the RSS change since the last
 * one to the workers active in between, and over the budget the most-charged worker past its own
 * limit is stopped when no silent one is to blame (see {@link MemoryWatchdog.tick}).
 *
 * Memory the host isolate holds in ArrayBuffers is nobody's loop (`Deno.memoryUsage().external`:
 * above all big response bodies a worker handed over, freed only at the host's next full GC), so
 * budget and growth are judged on RSS minus it. Measured: four 8 MiB answers in flight pushed a
 * busy test process over its budget and the tenant answering them was stopped as if it looped.
 */
import type { WorkerHandle } from "../worker_handle.ts";
import type { Logger } from "../logger.ts";

/** What the watchdog needs of a worker (a `WorkerHandle`). */
export type WatchedWorker = Pick<WorkerHandle, "inFlight" | "state" | "tenant" | "kill"> & {
  /** Messages received from the worker (the liveness signal). */
  readonly messages: number;
};

export interface MemoryWatchdogOptions {
  /** Default 25 ms. */
  intervalMs?: number;
  /** Room above the budget for the host's own memory (default 128 MiB). */
  slackMb?: number;
  /** Growth after a kill that marks the killed thread as a runaway (default 256 MiB). */
  runawayMb?: number;
  /** How long to watch for a runaway after a kill (default 1500 ms). */
  runawayWindowMs?: number;
  /** A worker must be silent this long to be a suspect (default 100 ms). */
  minSilentMs?: number;
  /** Process RSS in bytes (default: /proc/self/statm, else `Deno.memoryUsage().rss`). */
  readRss?: () => number;
  /** Bytes the host isolate holds in ArrayBuffers (default `Deno.memoryUsage().external`). */
  readHostExternal?: () => number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

interface Silence {
  messages: number;
  since: number;
  minRss: number;
}

/** The RSS in a `/proc/<pid>/statm` text (its second field, in 4 KiB pages), in bytes. */
export function rssFromStatm(text: string): number {
  return Number(text.split(" ")[1]) * 4096;
}

/** Reads this process's RSS from /proc/self/statm through a kept-open file (Linux). */
export function statmRss(): () => number {
  let file: Deno.FsFile | undefined;
  const buf = new Uint8Array(128);
  const decoder = new TextDecoder();
  try {
    file = Deno.openSync("/proc/self/statm");
  } catch {
    return () => Deno.memoryUsage().rss;
  }
  return () => {
    file!.seekSync(0, Deno.SeekMode.Start);
    const n = file!.readSync(buf) ?? 0;
    return rssFromStatm(decoder.decode(buf.subarray(0, n)));
  };
}

const MiB = 1024 * 1024;

/**
 * Watches the process's RSS while workers are busy; stops the silent worker the growth is
 * under. `tick()` is public so tests drive it with a fake `readRss`.
 *
 * @example
 * ```ts ignore
 * const dog = new MemoryWatchdog({ slackMb: 128 });
 * dog.acquire();
 * dog.watch(handle, 64); // a WorkerHandle and its tenant's memory_mb
 * dog.onRunaway = (tenant) => console.error(`runaway worker of ${tenant}`);
 * ```
 */
export class MemoryWatchdog {
  readonly #intervalMs: number;
  readonly #slack: number;
  readonly #runaway: number;
  readonly #runawayWindowMs: number;
  readonly #minSilentMs: number;
  readonly #readRss: () => number;
  readonly #readHostExternal: () => number;
  readonly #now: () => number;
  readonly #workers = new Map<WatchedWorker, number>();
  readonly #silence = new Map<WatchedWorker, Silence>();
  #users = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #baseline = 0;
  /** RSS growth charged to each worker during its events (see {@link tick}). */
  readonly #charge = new Map<WatchedWorker, number>();
  /** Each worker's message count at the last tick: a change means it was active since. */
  readonly #seen = new Map<WatchedWorker, number>();
  #lastRss: number | undefined;
  /**
   * Set by a silent worker's stop: its thread may run on (Deno can't stop synchronous code), and
   * then every later growth is its own, not the active workers'. Cleared once the process is
   * back within its budget.
   */
  #zombieMayGrow = false;
  /** After a kill: watch for a runaway thread until `until`. */
  #afterKill: { tenant: string; rss: number; until: number } | undefined;
  /** Logger for kills and runaways (set by the Runtime). */
  logger: Logger | undefined;
  /** Called when a killed worker's thread keeps growing the process (see the module doc). */
  onRunaway: ((tenant: string, grewMb: number) => void) | undefined;
  /** Workers stopped by the watchdog (stats, tests). */
  kills = 0;

  constructor(options: MemoryWatchdogOptions = {}) {
    this.#intervalMs = options.intervalMs ?? 25;
    this.#slack = (options.slackMb ?? 128) * MiB;
    this.#runaway = (options.runawayMb ?? 256) * MiB;
    this.#runawayWindowMs = options.runawayWindowMs ?? 1500;
    this.#minSilentMs = options.minSilentMs ?? 100;
    this.#readRss = options.readRss ?? statmRss();
    this.#readHostExternal = options.readHostExternal ?? (() => Deno.memoryUsage().external);
    this.#now = options.now ?? (() => performance.now());
  }

  /** A runtime starts using the watchdog; the first one measures the baseline and starts it. */
  acquire(): void {
    if (this.#users++ > 0) return;
    this.#baseline = this.#readRss();
    if (this.#intervalMs > 0) {
      const timer = setInterval(() => this.tick(), this.#intervalMs);
      Deno.unrefTimer(timer as unknown as number); // never keeps the process alive
      this.#timer = timer;
    }
  }

  release(): void {
    if (--this.#users > 0) return;
    this.#users = 0;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Watches a worker whose tenant's soft limit is `memoryMb` (0 = no limit: not counted). */
  watch(worker: WatchedWorker, memoryMb: number): void {
    this.#workers.set(worker, memoryMb * MiB);
  }

  /** The RSS above which a silent busy worker is stopped. */
  get budget(): number {
    let sum = 0;
    for (const limit of this.#workers.values()) sum += limit;
    return this.#baseline + sum + this.#slack;
  }

  /**
   * One sample; returns the worker it stopped, if any. Two rules, both only while RSS is over
   * the {@link budget}: a *silent* busy worker under which the process grew by its own limit (a
   * synchronous loop, see the module doc); else the worker *charged* with the most growth, if
   * that reached its own limit. Each sample splits the RSS change since the last one evenly
   * over the workers active in between (an event in flight, or a message since): memory a
   * tenant keeps outside V8's heap, where its heap sampler can't see it (WebAssembly memories,
   * Blob bytes: measured, a 48 MiB tenant kept 1 GiB of them over 16 requests), piles up on
   * its worker. Charges are cleared by a kill (the growth was mostly the stopped worker's; none
   * is charged while a runaway is watched, nor after a silent worker's stop until the process
   * is back within its budget: its thread may still be allocating) and whenever the process is
   * back within the slack of its baseline.
   */
  tick(): WatchedWorker | undefined {
    const now = this.#now();
    let busy = false;
    for (const w of this.#workers.keys()) {
      if (w.state === "dead") {
        this.#forget(w);
      } else if (w.inFlight > 0) busy = true;
      else this.#silence.delete(w);
    }
    if (!busy && !this.#afterKill) return undefined; // idle: no RSS read
    const total = this.#readRss();
    if (this.#afterKill) this.#checkRunaway(total, now);
    const rss = total - this.#readHostExternal(); // the workers' and the host's own memory
    this.#chargeGrowth(rss);
    // right after a kill the growth is the killed thread's own (see the module doc): blame nobody
    const blame = !this.#afterKill;
    let culprit: WatchedWorker | undefined;
    let grew = 0;
    let since = Infinity;
    for (const [w] of this.#workers) {
      if (w.inFlight <= 0) continue;
      const s = this.#silence.get(w);
      if (!s || s.messages !== w.messages) {
        this.#silence.set(w, { messages: w.messages, since: now, minRss: rss });
        continue;
      }
      if (rss < s.minRss) s.minRss = rss;
      if (!blame || now - s.since < this.#minSilentMs) continue;
      const g = rss - s.minRss;
      if (g > grew || (g === grew && g > 0 && s.since < since)) {
        culprit = w;
        grew = g;
        since = s.since;
      }
    }
    if (!blame || rss <= this.budget) return undefined;
    const limitOf = (w: WatchedWorker) => this.#workers.get(w) || this.#slack;
    // a worker under which the process grew less than its own limit is a busy one, not a loop
    // (measured: four 8 MiB answers on a starved core looked silent and grew 32 MiB)
    if (culprit && grew >= limitOf(culprit)) {
      this.#zombieMayGrow = true;
      return this.#stop(
        culprit,
        rss,
        total,
        now,
        `worker ran without yielding while the process grew by ${Math.round(grew / MiB)} MiB`,
      );
    }
    if (this.#zombieMayGrow) return undefined;
    let charged: WatchedWorker | undefined;
    let most = 0;
    for (const [w, c] of this.#charge) if (c > most) [charged, most] = [w, c];
    if (!charged || most < limitOf(charged)) return undefined;
    return this.#stop(
      charged,
      rss,
      total,
      now,
      `the process grew by ${
        Math.round(most / MiB)
      } MiB during its events (memory outside the JS heap, like WebAssembly memories and Blobs, counts)`,
    );
  }

  #stop(w: WatchedWorker, rss: number, total: number, now: number, what: string): WatchedWorker {
    const limit = this.#workers.get(w) ?? 0;
    const msg = `${what}, over its limit of ${Math.round(limit / MiB)} MiB ` +
      `(limits.memory_mb); stopped by the host's memory watchdog`;
    this.logger?.log({ level: "warn", msg, code: "ERR_TENANT_MEMORY", tenant: w.tenant });
    this.kills++;
    this.#forget(w);
    // the others' growth was mostly this worker's: measure them afresh
    for (const s of this.#silence.values()) s.minRss = rss;
    this.#charge.clear();
    this.#afterKill = { tenant: w.tenant, rss: total, until: now + this.#runawayWindowMs };
    w.kill(msg, "ERR_TENANT_MEMORY");
    return w;
  }

  #forget(w: WatchedWorker) {
    this.#workers.delete(w);
    this.#silence.delete(w);
    this.#charge.delete(w);
    this.#seen.delete(w);
  }

  /** Splits the RSS change since the last sample over the workers active since (see tick). */
  #chargeGrowth(rss: number) {
    const delta = rss - (this.#lastRss ?? rss);
    this.#lastRss = rss;
    if (rss <= this.#baseline + this.#slack) this.#charge.clear();
    if (rss <= this.budget) this.#zombieMayGrow = false;
    const active: WatchedWorker[] = [];
    for (const w of this.#workers.keys()) {
      if (w.inFlight > 0 || this.#seen.get(w) !== w.messages) active.push(w);
      this.#seen.set(w, w.messages);
    }
    // right after a kill, or while a stopped loop may still allocate, the growth is the killed
    // thread's own: charge nobody
    if (delta === 0 || active.length === 0 || this.#afterKill || this.#zombieMayGrow) return;
    for (const w of active) {
      this.#charge.set(w, Math.max(0, (this.#charge.get(w) ?? 0) + delta / active.length));
    }
  }

  #checkRunaway(rss: number, now: number) {
    const k = this.#afterKill!;
    if (rss - k.rss > this.#runaway) {
      this.#afterKill = undefined;
      const mb = Math.round((rss - k.rss) / MiB);
      this.logger?.log({
        level: "error",
        msg: `a stopped worker of tenant "${k.tenant}" keeps allocating (+${mb} MiB since it ` +
          `was terminated): Deno cannot interrupt synchronous code in a worker, so this process ` +
          `will reach V8's heap limit and abort`,
        code: "ERR_TENANT_MEMORY",
        tenant: k.tenant,
      });
      this.onRunaway?.(k.tenant, mb);
    } else if (now > k.until) {
      this.#afterKill = undefined;
      this.logger?.log({
        level: "info",
        msg: `memory watchdog: no runaway after stopping a worker of tenant "${k.tenant}" ` +
          `(process RSS ${Math.round(rss / MiB)} MiB, was ${Math.round(k.rss / MiB)} MiB)`,
        tenant: k.tenant,
      });
    }
  }
}

let shared: MemoryWatchdog | undefined;

/** The process's one watchdog (RSS is per process). */
export function memoryWatchdog(): MemoryWatchdog {
  return shared ??= new MemoryWatchdog();
}
