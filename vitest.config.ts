import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // prints "escape attempts: N, successes: M" after runs that include tests/security/
    // and ends with a plain "N passed, N failed" line
    reporters: ["default", "./tests/security/_reporter.ts", "./tests/_helpers/summary_reporter.ts"],
  },
});
