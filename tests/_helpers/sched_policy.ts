/** Linux scheduling policies read from `/proc` (`stat` field 41), for the CPU-priority tests. */

/** The policy number of SCHED_IDLE (0 is SCHED_OTHER, the normal one). */
export const SCHED_IDLE = 5;

/**
 * The fields of `/proc/<pid>/stat` (of thread `tid` when given) after the command name: [0] is
 * the state, [1] the parent's pid, [16] the niceness, [38] the policy. Throws once it is gone.
 */
export function statFields(pid: number | "self", tid?: number): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/${tid === undefined ? "" : `task/${tid}/`}stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Policy of thread `tid` of process `pid` (default this one); null once the thread is gone. */
export function threadPolicy(tid: number, pid: number | "self" = "self"): number | null {
  try {
    return Number(statFields(pid, tid)[38]);
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
    return Number(statFields("self", tid)[16]);
  } catch {
    return null;
  }
}
