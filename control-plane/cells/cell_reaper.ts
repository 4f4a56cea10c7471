/**
 * A cell's parent is a tiny `sh`, not the server: the server's main thread must never be the one
 * that reaps a cell.
 *
 * Why (measured on Linux 6.18, session 9): Deno reaps its children with `wait4()` on the main
 * thread, and reaping runs `release_task()`, which drops the dead process's cached `/proc/<pid>`
 * entries (`proc_invalidate_siblings_dcache` → `shrink_dcache_parent`) and can wait there while
 * those entries are still in use. In a storm probe that read every process's `/proc` stat now
 * and then (as `top` or a metrics exporter do), with cells SIGKILLed while their threads ran at
 * idle priority on a busy machine, the server's main thread sat in that wait for 2.9 to 4.4 s
 * (kernel stack sampled from `/proc/<pid>/task/<tid>/stack`, lag measured on the event loop, one
 * `wait4` timed at 3,042 ms by `perf trace`), and no request was served meanwhile. Under the
 * reaper that wait happens in the `sh`; the server reaps only the `sh`, which exits at once.
 * The wait can also burn CPU in that function (perf, session 10: 4–7.5 % of all samples of a 2.5 s
 * storm window, in 2 of 14 windows), so `cell_process.ts` runs the `sh` at the cell's own CPU
 * priority: reaping a bad cell is work done for it and must not compete with good tenants.
 *
 * The `sh` runs the cell in the background with the server's stdin, stdout and stderr, waits
 * for it, and exits with its status (128 + n when signal n killed it; {@link reapedStatus}
 * turns that back into a signal). The server finds the cell's pid in the kernel's list of the
 * `sh`'s children ({@link reapedPid}), never in anything the cell prints. Only where `/bin/sh`
 * and that list exist (Linux); elsewhere the cell is the server's child as before.
 *
 * @module
 */
import { constants } from "node:os";

const SH = "/bin/sh";

/**
 * Starts `"$@"` with this shell's stdin (a background job would get /dev/null), then lets go of
 * its own copies of the pipes (the server sees the cell's stdout end when the cell's does, and
 * the shell's job reports, "Killed", go nowhere) and exits with the job's status.
 */
const SCRIPT = 'exec 3<&0; "$@" <&3 3<&- & exec 3<&- >/dev/null 2>&1; wait $!';

/** True where cells run under the reaper (Linux with `/bin/sh` and `/proc/<pid>/task/<tid>/children`). */
export const reaperAvailable: boolean = (() => {
  if (Deno.build.os !== "linux") return false;
  try {
    Deno.statSync(SH);
    Deno.statSync(`/proc/${Deno.pid}/task/${Deno.pid}/children`);
    return true;
  } catch {
    return false;
  }
})();

/**
 * The command line that runs `argv` under the reaper (unchanged where it isn't available).
 *
 * @example
 * ```ts
 * import { reapedCommand } from "./cell_reaper.ts";
 * const [cmd, ...args] = reapedCommand(["deno", "run", "cell_main.ts"]);
 * console.log(cmd); // "/bin/sh" on Linux, "deno" elsewhere
 * ```
 */
export function reapedCommand(argv: string[]): string[] {
  return reaperAvailable ? [SH, "-c", SCRIPT, "worky-cell", ...argv] : argv;
}

/**
 * The pid of the process the reaper `reaperPid` started, from the kernel's list of its children;
 * undefined until it has forked (microseconds), once it is gone, or where there is no reaper.
 */
export function reapedPid(reaperPid: number): number | undefined {
  if (!reaperAvailable) return undefined;
  try {
    const text = Deno.readTextFileSync(`/proc/${reaperPid}/task/${reaperPid}/children`).trim();
    const pid = Number(text.split(" ")[0]);
    return text && Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name as Deno.Signal]),
);

/**
 * The reaped process's status from the reaper's: `sh` exits with 128 + n when signal n killed
 * its job, which becomes `{ code: 128 + n, signal: <name> }`, as Deno reports a process killed by
 * a signal. Statuses of processes not run under the reaper pass through.
 *
 * @example
 * ```ts
 * import { reapedStatus } from "./cell_reaper.ts";
 * const s = reapedStatus({ success: false, code: 137, signal: null });
 * console.log(s.signal); // "SIGKILL" where the reaper is used
 * ```
 */
export function reapedStatus(status: Deno.CommandStatus): Deno.CommandStatus {
  if (!reaperAvailable || status.signal !== null || status.code <= 128) return status;
  const signal = SIGNAL_NAMES.get(status.code - 128);
  return signal ? { ...status, signal } : status;
}
