/**
 * One supervised cell process (`runtime/cells/cell_main.ts`) and the HTTP client that reaches
 * its unix socket. A cell that exits is restarted at once, then after 100 ms doubling per death
 * while it lived less than 10 s (at most 10 s); while a restart waits longer than a second,
 * requests are refused with 503 `ERR_TENANT_CRASH_LOOP` and `retry-after`. Every exit is logged
 * with its code, signal and the end of its stderr. A cell whose RSS grows more than
 * `rssGrowthMb` over what it had when it first served is killed for memory (the V8 heap cap it
 * starts with doesn't bound WebAssembly memories or Blob bytes). On Linux the cell's parent is a
 * reaper `sh`, so this process never reaps a cell itself (`cell_reaper.ts`).
 *
 * @module
 */
import type { LogEntry, Logger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { canIdle, demoteToIdle, priorityPrefix } from "../../runtime/memory/cpu_priority.ts";
import { rssFromStatm } from "../../runtime/memory/memory_watchdog.ts";
import { reapedCommand, reapedPid, reapedStatus } from "./cell_reaper.ts";
import {
  CELL_FAILED_FIELD,
  CELL_MARK_FIELD,
  CELL_READY_FIELD,
  type CellInit,
} from "../../runtime/cells/cell_protocol.ts";

/** Niceness of cell processes (0 = same priority as the server) until one misbehaves. */
const CELL_NICENESS = 10;

const CELL_MAIN = new URL("../../runtime/cells/cell_main.ts", import.meta.url).pathname;
const HEALTHY_AFTER_MS = 10_000;
const MiB = 1024 * 1024;
/** Environment a cell keeps (nothing else of ours: no WORKY_SECRET_KEY, no tokens). */
const KEPT_ENV = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "NO_COLOR", "LANG", "TZ"];

/** The delay before restarting a cell that died `streak` times in a row (0 = at once). */
export function cellRestartDelayMs(streak: number): number {
  return streak <= 1 ? 0 : Math.min(10_000, 100 * 2 ** (streak - 2));
}

/** One run of the cell process. */
export interface CellIncarnation {
  readonly pid: number;
  /** Reaches the cell's socket (a new client per run: no stale keep-alive connections). */
  readonly client: Deno.HttpClient;
  readonly status: Promise<Deno.CommandStatus>;
  /** Set once the process ended. */
  exit?: Deno.CommandStatus;
  /** Kills this run (SIGKILL); the supervisor starts the next one. */
  kill(reason: string): void;
  /** Why this run was killed for memory (its RSS cap), if it was. */
  readonly memoryKill?: string;
}

/** Options of {@linkcode CellProcess}. */
export interface CellProcessOptions {
  tenant: string;
  /** Written to the cell's stdin on every start. */
  init: CellInit;
  /** `deno run` flags before the main module (heap cap, permissions). */
  flags: string[];
  /** `deno.json` of the repository (import map, npm resolution). */
  denoConfig: string;
  logger: Logger;
  /** Start at SCHED_IDLE, as if already demoted (the tenant misbehaved before). */
  idle?: boolean;
  /** RSS growth over its first serving moment that gets a run killed, MiB (0 or unset: none). */
  rssGrowthMb?: number;
  /** Called once, when the cell goes to SCHED_IDLE (`demote`), with the reason. */
  onDemote?: (reason: string) => void;
}

/** A busy cell's RSS is read this often, ms (an idle one's once a second). */
const RSS_INTERVAL_MS = 50;

/** A process's RSS in bytes (Linux), undefined where unreadable (not Linux, or it is gone). */
function processRss(pid: number): number | undefined {
  try {
    return rssFromStatm(Deno.readTextFileSync(`/proc/${pid}/statm`));
  } catch {
    return undefined;
  }
}

/**
 * Starts, watches and restarts one cell.
 *
 * @example
 * ```ts ignore
 * const cell = new CellProcess({ tenant: "shop", init, flags, denoConfig, logger });
 * await cell.start(); // throws if the tenant's module fails to load in the cell
 * const run = await cell.serving();
 * await fetch("http://shop.example/", { client: run.client });
 * await cell.stop();
 * ```
 */
export class CellProcess {
  readonly #o: CellProcessOptions;
  #current: CellIncarnation | undefined;
  #ready = Promise.withResolvers<CellIncarnation>();
  /** The run `#ready` resolved with, until it is killed or dies. */
  #readyRun: Incarnation | undefined;
  #stopping = false;
  #streak = 0;
  #backoffUntil = 0;
  #started = false;
  /** Set once the tenant misbehaved: this run and later ones get SCHED_IDLE (`cpu_priority.ts`). */
  #demoted = false;
  /** Restarts after a death since the cell started. */
  restarts = 0;
  /** Whether requests are in flight (set by its deployment): its RSS is read more often then. */
  busy: () => boolean = () => true;

  constructor(options: CellProcessOptions) {
    this.#o = options;
    this.#demoted = options.idle === true && canIdle;
    this.#ready.promise.catch(() => {});
  }

  /** The running incarnation, if it serves. */
  get current(): CellIncarnation | undefined {
    return this.#current;
  }

  /** Starts the first run; rejects (with the cell's own error) if it does not come up. */
  async start(): Promise<void> {
    const run = this.#spawn();
    const failure = await Promise.race([
      this.#ready.promise.then(() => null),
      run.status.then(() => this.#startError(run)),
    ]);
    if (failure) {
      this.#stopping = true;
      throw failure;
    }
    this.#started = true;
  }

  /** The run to send a request to: now, after a restart in progress, or a crash-loop refusal. */
  serving(): Promise<CellIncarnation> {
    if (this.#stopping) {
      return Promise.reject(
        new WorkyError("ERR_UNAVAILABLE", `tenant "${this.#o.tenant}": its cell is stopping`),
      );
    }
    const wait = this.#backoffUntil - performance.now();
    if (wait > 1000) {
      const e = new WorkyError(
        "ERR_TENANT_CRASH_LOOP",
        `tenant "${this.#o.tenant}": its cell process keeps dying (${this.#streak} times in a ` +
          `row); restarting in ${Math.ceil(wait / 1000)} s`, // whole seconds, as retry-after
      );
      e.retryAfterMs = wait;
      return Promise.reject(e);
    }
    return this.#ready.promise;
  }

  /** True once the cell was moved to SCHED_IDLE. */
  get demoted(): boolean {
    return this.#demoted;
  }

  /**
   * Moves this cell to SCHED_IDLE for good (the running process and every later one): called
   * when its tenant misbehaved (a timeout, crash, exception or memory kill), and on its death.
   * No-op where `chrt` is missing or the cell is already demoted.
   */
  demote(reason: string): void {
    if (this.#demoted || !canIdle) return;
    this.#demoted = true;
    this.#o.onDemote?.(reason);
    this.#o.logger.log({
      level: "warn",
      msg:
        `cell of tenant "${this.#o.tenant}" now runs at idle CPU priority (SCHED_IDLE): ${reason}`,
      tenant: this.#o.tenant,
    });
    const run = this.#current;
    if (!run || run.exit) return;
    void demoteToIdle(run.pid, true); // every thread of the live process; later runs start idle
    const reaper = (run as Incarnation).child.pid;
    if (reaper !== run.pid) void demoteToIdle(reaper); // and its reaper `sh`
  }

  /** Stops for good: EOF on its stdin (it drains), SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    this.#stopping = true;
    const run = this.#current ?? undefined;
    this.#ready.reject(new WorkyError("ERR_UNAVAILABLE", `tenant "${this.#o.tenant}" stopped`));
    if (!run || run.exit) return;
    const timer = setTimeout(() => run.kill("did not stop in time"), graceMs);
    (run as Incarnation).closeStdin();
    await run.status;
    clearTimeout(timer);
    await Deno.remove(this.#o.init.socketPath).catch(() => {}); // left by a killed cell
  }

  #spawn(): Incarnation {
    const env: Record<string, string> = { NO_COLOR: "1" };
    for (const k of KEPT_ENV) {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    }
    const denoArgs = [
      "run",
      "--unstable-worker-options",
      "--no-prompt",
      "--config",
      this.#o.denoConfig,
      ...this.#o.flags,
      CELL_MAIN,
    ];
    // A cell holds a tenant we don't trust: it runs at a lower CPU priority, so on a busy
    // machine the kernel favours the server and the tenants in it; once its tenant misbehaved
    // (`demote`), at the lowest (bench/isolation.ts: at nice 10 a storm of bad cells tripled the
    // good tenants' p99).
    // Under a reaper `sh`, so the server's main thread never reaps the cell (`cell_reaper.ts`);
    // the `sh` runs at the cell's priority, since reaping it is work done for the cell.
    const [cmd, ...args] = [
      ...priorityPrefix(this.#demoted, CELL_NICENESS),
      ...reapedCommand([Deno.execPath(), ...denoArgs]),
    ];
    const child = new Deno.Command(cmd, {
      args,
      clearEnv: true,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const run = new Incarnation(
      child,
      this.#o.init.socketPath,
      this.#o.tenant,
      this.#o.init.mark,
      this.#o.logger,
    );
    this.#current = run;
    const stdin = child.stdin.getWriter();
    stdin.write(new TextEncoder().encode(JSON.stringify(this.#o.init) + "\n")).catch(() => {});
    run.closeStdin = () => void stdin.close().catch(() => {});
    run.onReady = () => {
      if (this.#current === run && !this.#stopping) {
        this.#readyRun = run;
        this.#ready.resolve(run);
        this.#capMemory(run);
      }
    };
    run.onKill = () => this.#unready(run); // no new request goes to a run being killed
    const startedAt = performance.now();
    run.status.then((status) => this.#died(run, status, performance.now() - startedAt));
    return run;
  }

  /** Kills `run` once its RSS grew `rssGrowthMb` over what it had when it began serving. */
  #capMemory(run: Incarnation) {
    const capMb = this.#o.rssGrowthMb ?? 0;
    const start = processRss(run.pid);
    if (capMb <= 0 || start === undefined) return;
    let lastRead = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      if (!this.busy() && now - lastRead < 1000) return;
      lastRead = now;
      const rss = processRss(run.pid);
      if (run.exit || rss === undefined) return clearInterval(timer);
      const grewMb = Math.round((rss - start) / MiB);
      if (grewMb <= capMb) return;
      clearInterval(timer);
      run.memoryKill = `tenant "${this.#o.tenant}": its cell process grew by ${grewMb} MiB, ` +
        `over the ${capMb} MiB its limits.memory_mb allows (the heap cap plus 64 MiB; memory ` +
        `outside the JS heap, like WebAssembly memories and Blobs, counts); the cell was restarted`;
      run.kill(`its RSS grew by ${grewMb} MiB (cap ${capMb} MiB)`);
    }, RSS_INTERVAL_MS);
    Deno.unrefTimer(timer as unknown as number);
    run.status.finally(() => clearInterval(timer));
  }

  #died(run: Incarnation, status: Deno.CommandStatus, livedMs: number) {
    run.client.close();
    if (this.#current !== run) return;
    if (this.#stopping) return;
    if (!this.#started) return; // the first start failed: start() reports it
    this.demote(
      `its process died (code ${status.code}${status.signal ? `, ${status.signal}` : ""})`,
    );
    this.#streak = livedMs < HEALTHY_AFTER_MS ? this.#streak + 1 : 1;
    const delay = cellRestartDelayMs(this.#streak);
    this.#backoffUntil = performance.now() + delay;
    this.#o.logger.log({
      level: "error",
      msg: `cell of tenant "${this.#o.tenant}" (pid ${run.pid}) exited with code ${status.code}` +
        (status.signal ? ` (signal ${status.signal})` : "") +
        (run.killedFor ? `, killed because ${run.killedFor}` : "") +
        `; restarting in ${delay} ms` + (run.stderrTail ? `; stderr: ${run.stderrTail}` : ""),
      tenant: this.#o.tenant,
      code: status.code,
      signal: status.signal,
      restarts: this.#streak,
    });
    this.#unready(run);
    setTimeout(() => {
      if (this.#stopping) return;
      this.restarts++;
      this.#spawn();
    }, delay);
  }

  /** Requests from now on wait for the next run, if `run` is the one they went to. */
  #unready(run: Incarnation) {
    if (this.#readyRun !== run || this.#stopping) return;
    this.#readyRun = undefined;
    this.#ready = Promise.withResolvers<CellIncarnation>();
    this.#ready.promise.catch(() => {});
  }

  async #startError(run: Incarnation): Promise<WorkyError> {
    await run.stdoutDone;
    if (run.failure) return WorkyError.from(run.failure);
    const s = run.exit!;
    return new WorkyError(
      "ERR_INTERNAL",
      `tenant "${this.#o.tenant}": its cell process exited with code ${s.code}` +
        (s.signal ? ` (signal ${s.signal})` : "") + ` before serving; stderr: ${run.stderrTail}`,
    );
  }
}

class Incarnation implements CellIncarnation {
  readonly client: Deno.HttpClient;
  readonly status: Promise<Deno.CommandStatus>;
  readonly stdoutDone: Promise<void>;
  exit?: Deno.CommandStatus;
  serving = false;
  failure: unknown;
  killedFor = "";
  memoryKill?: string;
  stderrTail = "";
  onReady = () => {};
  onKill = () => {};
  closeStdin = () => {};

  constructor(
    readonly child: Deno.ChildProcess,
    socketPath: string,
    readonly tenant: string,
    readonly mark: string,
    readonly logger: Logger,
  ) {
    this.client = Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
    this.status = child.status.then((s) => (this.exit = reapedStatus(s)));
    this.stdoutDone = this.#readStdout(child.stdout);
    this.#readStderr(child.stderr);
  }

  #cellPid: number | undefined;
  /** The cell's pid (under the reaper, the `sh`'s child; the `sh`'s own until it has forked). */
  get pid(): number {
    return (this.#cellPid ??= reapedPid(this.child.pid)) ?? this.child.pid;
  }

  kill(reason: string): void {
    if (this.exit) return;
    this.killedFor ||= reason;
    this.onKill();
    try {
      // the reaper's child still (a pid read earlier could belong to another process by now);
      // none: no reaper, or one that has not forked yet (killing it stops the cell's start)
      const cell = reapedPid(this.child.pid);
      if (cell !== undefined) Deno.kill(cell, "SIGKILL");
      else if (this.#cellPid === undefined) this.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }

  /** JSON log lines → our logger (tagged with the cell's pid); the ready/failed markers. */
  async #readStdout(stream: ReadableStream<Uint8Array>) {
    let buf = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      buf += text;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) this.#line(line);
      }
    }
  }

  /**
   * One stdout line: the cell's (marked: ready, failed) or a log line. Tenant code can write
   * here too, so a line without the mark changes nothing and is logged as its tenant's,
   * whatever tenant it names.
   */
  #line(line: string) {
    let entry: Record<string, unknown> = { level: "info", msg: line };
    try {
      const parsed = JSON.parse(line);
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) entry = parsed;
    } catch { /* a plain line */ }
    if (entry[CELL_MARK_FIELD] === this.mark) {
      if (entry[CELL_READY_FIELD]) {
        this.serving = true;
        this.onReady();
      }
      if (entry[CELL_FAILED_FIELD]) this.failure = entry[CELL_FAILED_FIELD];
    }
    delete entry[CELL_MARK_FIELD];
    delete entry.time;
    this.logger.log({ ...entry, tenant: this.tenant, cellPid: this.pid } as unknown as LogEntry);
  }

  async #readStderr(stream: ReadableStream<Uint8Array>) {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      this.stderrTail = (this.stderrTail + text).slice(-2000);
    }
  }
}
