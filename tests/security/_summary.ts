/**
 * The escape suite's bookkeeping. `attempt(name, fn)` is one escape attempt:
 * a test that marks itself "tried" before running and "blocked" only after
 * every assertion that the escape failed has passed. The reporter
 * (`_reporter.ts`) counts them: an attempt that did not end "blocked" (its
 * assertions failed, or it threw) is a success for the attacker, and fails
 * the run.
 */
import { it } from "vitest";

declare module "vitest" {
  interface TaskMeta {
    /** Set by `attempt()`: "tried" while running, "blocked" when the escape failed. */
    escape?: "tried" | "blocked";
  }
}

/** One escape attempt. `fn` must assert that the escape failed (and that it really ran). */
export function attempt(name: string, fn: () => Promise<void>, timeout?: number): void {
  it(`escape attempt: ${name}`, async ({ task }) => {
    task.meta.escape = "tried";
    await fn();
    task.meta.escape = "blocked";
  }, timeout);
}
