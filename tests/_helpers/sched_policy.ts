/** Linux scheduling policies read from `/proc` (`stat` field 41), for the CPU-priority tests. */

/** The policy number of SCHED_IDLE (0 is SCHED_OTHER, the normal one). */
export const SCHED_IDLE = 5;

/** Policy of thread `tid` of process `pid` (default this one); null once the thread is gone. */
export function threadPolicy(tid: number, pid: number | "self" = "self"): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
  } catch {
    return null;
  }
}

/** Policy of every thread of process `pid`. */
export function policiesOf(pid: number): (number | null)[] {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].map((t) => threadPolicy(Number(t.name), pid));
}

/** Niceness of thread `tid` of this process (`stat` field 19); null once the thread is gone. */
export function threadNice(tid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  } catch {
    return null;
  }
}
