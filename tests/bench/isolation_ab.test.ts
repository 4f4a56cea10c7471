/** `bench/isolation_ab.ts`: reading the storm bench's figures and the steal it saw. */
import { describe, expect, it } from "vitest";
import { median, runFigures } from "../../bench/isolation_ab.ts";

/** The keys `bench/isolation.ts` prints for one phase (values of one run of session 14). */
const out = (phase: string, stealStorm: string) => ({
  [`${phase}: at 1000 req/s: good_p99_quiet_ms`]: 3.19,
  [`${phase}: at 1000 req/s: good_p99_storm_ms`]: 6.57,
  [`${phase}: at 1000 req/s: good_success_storm_pct`]: 99.95,
  [`${phase}: at 1000 req/s: p99_storm_over_quiet`]: 2.06,
  [`${phase}: at 1000 req/s: good_p99_storm_ms_by_window`]: "6.33 14.28 5.32 4.14 5.77",
  [`${phase}: at 1000 req/s: control_p99_storm_over_quiet`]: 2.3,
  [`${phase}: at 1000 req/s: steal_pct_quiet_by_window`]: "0 0 1 0 0",
  [`${phase}: at 1000 req/s: steal_pct_storm_by_window`]: stealStorm,
  [`${phase}: saturating: p99_storm_over_quiet`]: 1.2,
});

describe("isolation_ab", () => {
  it("reads one phase's ratio, first storm window, storm p99 and worst steal", () => {
    const both = { ...out("auto paced", "0 0 0 0 0"), ...out("cell paced", "0 7 0 0 0") };
    expect(runFigures(both, "auto paced")).toEqual({
      ratio: 2.06,
      controlRatio: 2.3,
      firstStormMs: 6.33,
      stormP99Ms: 6.57,
      stormSuccessPct: 99.95,
      maxStealPct: 1,
    });
    expect(runFigures(both, "cell paced").maxStealPct).toBe(7);
  });

  it("names the figure and phase it can't find", () => {
    expect(() => runFigures(out("auto paced", "0"), "cell flood")).toThrow(
      /no ": steal_pct_quiet_by_window" for phase "cell flood" in the bench.s output/,
    );
  });

  it("takes medians of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
