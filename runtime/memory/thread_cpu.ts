/**
 * The threads of a process on Linux, from `/proc/<pid>/task`: their ids ({@link threadIds}), and
 * the CPU time of one thread of this process (or of process `pid`: the control plane reads a
 * cell's threads, `control-plane/cells/cell_cpu.ts`), from `/proc/<pid>/task/<tid>/schedstat`
 * (its first field: nanoseconds on a CPU, at scheduler precision, unlike `stat`'s 10 ms ticks).
 * Reading it costs one small file read (~10 µs). `undefined` where there is no such file (not
 * Linux, or the thread ended).
 *
 * @example
 * ```ts ignore
 * const before = threadCpuNs(tid);
 * // … later
 * const usedMs = (threadCpuNs(tid)! - before!) / 1e6;
 * ```
 *
 * @module
 */
export function threadCpuNs(tid: number, pid: number | "self" = "self"): number | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/schedstat`);
    const ns = Number(text.slice(0, text.indexOf(" ")));
    return Number.isFinite(ns) ? ns : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Thread ids of process `pid` (default this one), from `/proc/<pid>/task`; undefined where that
 * can't be read (not Linux, or the process is gone).
 *
 * @example
 * ```ts ignore
 * threadIds(cellPid); // → [4321, 4322, 4325, …]
 * ```
 */
export function threadIds(pid: number | "self" = "self"): number[] | undefined {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => Number(e.name));
  } catch {
    return undefined;
  }
}
