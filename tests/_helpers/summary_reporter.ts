/**
 * A vitest reporter that ends the run with one plain line, `N passed, N failed`
 * (`, N skipped` when some were), which CI and people read the same way.
 */
import type { Reporter } from "vitest/reporters";

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

function count(task: TaskLike, totals: { passed: number; failed: number; skipped: number }) {
  if (task.type === "test") {
    const state = task.result?.state;
    if (state === "pass") totals.passed++;
    else if (state === "fail") totals.failed++;
    else totals.skipped++;
  }
  for (const t of task.tasks ?? []) count(t, totals);
}

export default class SummaryReporter implements Reporter {
  onFinished(files: TaskLike[] = [], errors: unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) {
      // a file that failed to load counts as a failure
      if (f.result?.state === "fail" && !(f.tasks ?? []).length) totals.failed++;
      count(f, totals);
    }
    totals.failed += errors.length;
    console.log(
      `${totals.passed} passed, ${totals.failed} failed` +
        (totals.skipped ? `, ${totals.skipped} skipped` : ""),
    );
  }
}
