/**
 * Lowering the CPU priority of code we no longer trust, on Linux: Linux's SCHED_IDLE policy,
 * set with util-linux's `chrt`, runs a thread only when no normal thread wants the core (a
 * much lower weight than nice 19), and it applies per thread, so a worker thread that
 * `terminate()` could not stop can be demoted inside the Worky process itself.
 *
 * Measured (bench/isolation.ts, 2 cores): with bad tenants' cells at nice 10 a storm tripled the
 * good tenants' p99 (3.0×); with misbehaving cells at SCHED_IDLE it was 1.3–2.5× under a paced
 * storm and up to 4.6× under a flood.
 *
 * Without `chrt` (not Linux, or a minimal image) the SCHED_IDLE helpers are no-ops and cells fall
 * back to `nice`; {@link lowerPriority} needs no tool (`setpriority(2)` through `node:os`).
 *
 * @module
 */
import { getPriority, setPriority } from "node:os";
import { threadIds } from "./thread_cpu.ts";

const executable = (paths: string[]) =>
  paths.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });

/**
 * CPU-ish time of one event past which the threads that ran it drop to nice 19 (`lowerPriority`),
 * in-process (`WorkerHandle`) and in a cell (`CellCpuMeter`) alike: 50 ms.
 */
export const HEAVY_EVENT_NS = 50e6;

/** util-linux's `chrt`, on Linux. */
const CHRT = Deno.build.os === "linux" ? executable(["/usr/bin/chrt", "/bin/chrt"]) : undefined;
/** coreutils' `nice`. */
const NICE = executable(["/usr/bin/nice", "/bin/nice"]);

/** True when SCHED_IDLE can be set here. */
export const canIdle: boolean = CHRT !== undefined;

/**
 * A command prefix that runs what follows at lower priority and execs it in place (the pid,
 * signals and kill stay the command's own): SCHED_IDLE when `idle` (and available), else
 * `nice -n <niceness>`; empty without the tools.
 *
 * @example
 * ```ts
 * import { priorityPrefix } from "./cpu_priority.ts";
 * const [cmd, ...args] = [...priorityPrefix(true, 10), "sleep", "0"];
 * await new Deno.Command(cmd, { args }).output();
 * ```
 */
export function priorityPrefix(idle: boolean, niceness: number): string[] {
  if (idle && CHRT) return [CHRT, "--idle", "0"];
  return NICE ? [NICE, "-n", String(niceness)] : [];
}

/**
 * Moves thread or process `id` to SCHED_IDLE (`allThreads`: every thread of process `id`).
 * Resolves true when it succeeded, false otherwise (no chrt, the id is gone).
 *
 * With FFI permission (the server has it; a cell does not) it calls `sched_setscheduler(2)` in
 * libc directly, on this thread, in microseconds; else it runs `chrt`. Why not always `chrt`: a
 * subprocess is spawned by the thread that serves every tenant, and `spawn` blocks it until the
 * child has exec'd, which waits for a core when the box is busy. Measured (session 17, 2
 * cores): 3–6 demotions in a storm's first 2.5 s (7 runs), each `chrt` spawn blocking the thread
 * 0.6–10.4 ms (the 10 of 2 runs read in full); the call took 0.07 ms on a quiet box.
 *
 * @example
 * ```ts ignore
 * await demoteToIdle(tid);             // one thread of this process (a zombie worker)
 * await demoteToIdle(cellPid, true);   // a whole cell process
 * ```
 */
export function demoteToIdle(id: number, allThreads = false): Promise<boolean> {
  if (!CHRT) return Promise.resolve(false);
  const libc = schedLibc();
  if (libc) return Promise.resolve(setIdle(libc, id, allThreads));
  return succeeds(CHRT, [
    ...(allThreads ? ["--all-tasks"] : []),
    "--idle",
    "--pid",
    "0",
    String(id),
  ]);
}

/**
 * Lowers thread (or process) `id` to niceness `niceness` with `setpriority(2)` (`node:os`; on
 * Linux a thread id names that thread alone); never raises it, which needs privileges, so a
 * thread already nicer stays as it is. Synchronous, no subprocess. False when it could not:
 * the id is gone, or this process lacks `--allow-sys` (a cell).
 *
 * @example
 * ```ts ignore
 * lowerPriority(tid, 19); // a worker thread running a CPU-heavy event
 * ```
 */
export function lowerPriority(id: number, niceness: number): boolean {
  try {
    if (getPriority(id) < niceness) setPriority(id, niceness);
    return true;
  } catch {
    return false;
  }
}

type SchedLibc = Deno.DynamicLibrary<{
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"]; result: "i32" };
}>;
let libc: SchedLibc | null | undefined;

/** libc's `sched_setscheduler`, when this process may use FFI (Linux); null otherwise. */
function schedLibc(): SchedLibc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (Deno.build.os !== "linux") return libc;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return libc;
  } catch {
    return libc;
  }
  for (const name of ["libc.so.6", "libc.so"]) { // glibc, musl
    try {
      libc = Deno.dlopen(name, {
        sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
      }) as SchedLibc;
      return libc;
    } catch { /* try the next name */ }
  }
  return libc;
}

/** Linux's SCHED_IDLE policy number (`<sched.h>`). */
const SCHED_IDLE = 5;

/** SCHED_IDLE for thread `id`, or for every thread of process `id` (`allThreads`). */
function setIdle(lib: SchedLibc, id: number, allThreads: boolean): boolean {
  const param = new Int32Array(1); // struct sched_param { int sched_priority = 0 }
  const set = (tid: number) => lib.symbols.sched_setscheduler(tid, SCHED_IDLE, param) === 0;
  if (!allThreads) return set(id);
  const tids = threadIds(id);
  if (!tids) return false; // the process is gone
  // a thread that ended meanwhile is no failure; the process itself must take it
  return tids.map((tid) => set(tid) || tid !== id).every(Boolean);
}

/** Runs `cmd` quietly; true when it exits 0 (false when it fails or can't start). */
async function succeeds(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()).success;
  } catch {
    return false;
  }
}
