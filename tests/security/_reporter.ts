/**
 * A vitest reporter that prints `escape attempts: N, successes: M` after a run
 * that included `tests/security/` (see `_summary.ts`). A success also fails
 * its test, so the run fails.
 */
import type { Reporter } from "vitest/reporters";

interface TaskLike {
  type: string;
  meta?: { escape?: string };
  tasks?: TaskLike[];
}

function collect(task: TaskLike, out: string[]) {
  if (task.meta?.escape) out.push(task.meta.escape);
  for (const t of task.tasks ?? []) collect(t, out);
}

export default class EscapeReporter implements Reporter {
  onFinished(files: TaskLike[] = []): void {
    const states: string[] = [];
    for (const f of files) collect(f, states);
    if (states.length === 0) return;
    const successes = states.filter((s) => s !== "blocked").length;
    console.log(`\nescape attempts: ${states.length}, successes: ${successes}\n`);
  }
}
