/**
 * Growing this process's file-descriptor table once, at start, so that serving never grows it.
 *
 * Linux keeps a process's open files in one table that doubles when a new descriptor lands past
 * its end (256 → 512 → …), and the thread that grows a table other threads share first waits for
 * an RCU grace period (`expand_files` → `synchronize_rcu`). Kernels with preemptible RCU and no
 * priority boosting (this one: `CONFIG_PREEMPT_RCU=y`, no `CONFIG_RCU_BOOST`) end a grace period
 * only once every reader preempted inside a read-side section ran again, and on a saturated box a
 * reader at SCHED_IDLE (where Worky puts misbehaving tenants' threads and cells) may wait hundreds
 * of milliseconds for a core. Measured (perf `sched_switch` stacks, `bench/isolation.ts`, session
 * 15): the host thread blocked 194 ms in `socket()` → `expand_files` → `synchronize_rcu` when the
 * server's descriptors passed 256 during a storm, and every good request waited behind it; that
 * was the quarter-second stall seen in about one storm run in ten.
 *
 * A table never shrinks, so growing it before the server listens, on a quiet box, takes that wait
 * off the request path for the first {@link FD_TABLE_ENTRIES} descriptors (a storm run peaks near
 * 280). Measured on a quiet box: 49–67 ms of start, ~16 ms of it CPU (the rest waits out the grace
 * periods of four growths), and the table's 32 KiB of kernel memory.
 *
 * @module
 */
import { closeSync, openSync } from "node:fs";

/** Entries the table is grown to at start: 4096 descriptors. */
export const FD_TABLE_ENTRIES = 4096;

/** How {@link presizeFdTable} opens and closes descriptors, and the limit it stays under. */
export interface FdTableIo {
  /** Opens a descriptor and returns its number (default: `/dev/null`, read-only). */
  open(): number;
  /** Closes descriptor `fd`. */
  close(fd: number): void;
  /** The soft `RLIMIT_NOFILE` (default: from `/proc/self/limits`); undefined when unknown. */
  softLimit(): number | undefined;
  /** Entries the table has now (default: `FDSize` in `/proc/self/status`); undefined if unknown. */
  tableSize(): number | undefined;
}

/** The soft "Max open files" limit of this process, from `/proc/self/limits`. */
function openFilesSoftLimit(): number | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
    return Number.isFinite(soft) ? soft : undefined; // "unlimited" → undefined
  } catch {
    return undefined;
  }
}

/**
 * Entries in the file-descriptor table of process `pid` (`FDSize` in its `/proc/<pid>/status`);
 * undefined where there is no such file.
 *
 * @example
 * ```ts ignore
 * fdTableSize(); // → 4096 once presizeFdTable() ran
 * ```
 */
export function fdTableSize(pid: number | "self" = "self"): number | undefined {
  try {
    const size = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^FDSize:\s+(\d+)/m)?.[1];
    return size === undefined ? undefined : Number(size);
  } catch {
    return undefined;
  }
}

const linuxIo: FdTableIo = {
  open: () => openSync("/dev/null", "r"),
  close: closeSync,
  softLimit: openFilesSoftLimit,
  tableSize: () => fdTableSize(),
};

/**
 * Grows the file-descriptor table to hold `entries` descriptors by opening descriptors until one
 * is numbered `entries / 2` or more (a table holds the next power of two past its highest
 * descriptor), then closes them all. It never takes more than half the soft open-files limit,
 * so with a low limit the table grows less. Returns the highest descriptor number it reached
 * (-1 when it opened none: not Linux, the table is big enough already, or no descriptor could be
 * opened). Linux only; elsewhere a no-op.
 *
 * @example
 * ```ts
 * import { presizeFdTable } from "./fd_table.ts";
 * presizeFdTable(); // once, before the server listens
 * ```
 */
export function presizeFdTable(
  entries: number = FD_TABLE_ENTRIES,
  io: FdTableIo = linuxIo,
): number {
  if (io === linuxIo && Deno.build.os !== "linux") return -1;
  if ((io.tableSize() ?? 0) >= entries) return -1; // grown before (another server in this process)
  const limit = io.softLimit();
  const budget = limit === undefined ? entries : Math.min(entries, Math.floor(limit / 2));
  const opened: number[] = [];
  try {
    while (opened.length < budget) {
      const fd = io.open();
      opened.push(fd);
      if (fd >= entries / 2) break;
    }
  } catch {
    // out of descriptors or no read access to /dev/null: keep what grew
  } finally {
    for (const fd of opened) io.close(fd);
  }
  return opened.at(-1) ?? -1; // the lowest free number is taken each time: the last is the highest
}
