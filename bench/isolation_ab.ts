/**
 * Compares the storm bench of two checkouts in interleaved pairs: `bench/isolation.ts` of A, then
 * of B, then A again…, so the drift of a shared VM lands on both. A pair where the hypervisor stole
 * more than {@link MAX_STEAL_PCT} % of the CPU in any window of either run is dropped: steal makes
 * quiet windows slow and ratios look better than they are. Measured why (session 14): three runs
 * of a change against four runs of the code before it, taken hours apart, said the change cut the
 * first storm window from 41–47 ms to 17–38; five interleaved pairs on a quiet box said it made it
 * worse in every pair (median 11.5 against 7.0 ms).
 *
 * Usage: `deno run -A bench/isolation_ab.ts <checkout A> <checkout B> [pairs]` (default 5 pairs;
 * `BENCH_ISOLATION_PHASES` picks the phase, default "auto paced"). Each checkout needs its
 * `node_modules` (a symlink to this one's will do). Prints each pair and, over the pairs kept, the
 * median p99 ratio, first storm window and storm p99 of each side, and its lowest storm success
 * rate.
 *
 * @module
 */

const MAX_STEAL_PCT = 3;

/** The figures of one run that the comparison uses. */
export interface RunFigures {
  ratio: number;
  controlRatio: number;
  firstStormMs: number;
  stormP99Ms: number;
  /** The good tenant's success rate in the storm windows, %. */
  stormSuccessPct: number;
  maxStealPct: number;
}

/** Picks the figures of `phase` out of `bench/isolation.ts`'s printed object. */
export function runFigures(out: Record<string, number | string>, phase: string): RunFigures {
  const at = (key: string) => {
    const k = Object.keys(out).find((k) => k.startsWith(`${phase}: at `) && k.endsWith(key));
    if (k === undefined) throw new Error(`no "${key}" for phase "${phase}" in the bench's output`);
    return out[k];
  };
  const steal = `${at(": steal_pct_quiet_by_window")} ${at(": steal_pct_storm_by_window")}`;
  return {
    ratio: Number(at(": p99_storm_over_quiet")),
    controlRatio: Number(at(": control_p99_storm_over_quiet")),
    firstStormMs: Number(String(at(": good_p99_storm_ms_by_window")).split(" ")[0]),
    stormP99Ms: Number(at(": good_p99_storm_ms")),
    stormSuccessPct: Number(at(": good_success_storm_pct")),
    maxStealPct: Math.max(...steal.trim().split(/\s+/).map(Number)),
  };
}

/** The median of `xs` (NaN when empty). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function runOnce(checkout: string, phase: string): Promise<RunFigures> {
  const { stdout, success } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-prompt",
      "--unstable-worker-options",
      "--v8-flags=--expose-gc",
      "bench/isolation.ts",
    ],
    cwd: checkout,
    env: { BENCH_ISOLATION_PHASES: phase },
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const json = text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1);
  if (!success || !json) throw new Error(`bench/isolation.ts failed in ${checkout}`);
  // bench/isolation.ts prints its object with console.log: every key quoted, strings in double
  // quotes, numbers bare, so it parses as JSON (checked on its real output)
  return runFigures(JSON.parse(json), phase);
}

if (import.meta.main) {
  const [a, b, n = "5"] = Deno.args;
  if (!a || !b || !(Number(n) > 0)) {
    console.error("usage: deno run -A bench/isolation_ab.ts <checkout A> <checkout B> [pairs]");
    Deno.exit(2);
  }
  const phase = Deno.env.get("BENCH_ISOLATION_PHASES") ?? "auto paced";
  const kept: [RunFigures, RunFigures][] = [];
  const show = (f: RunFigures) =>
    `ratio ${f.ratio} (control ${f.controlRatio}), first storm ${f.firstStormMs} ms, ` +
    `storm p99 ${f.stormP99Ms} ms, storm success ${f.stormSuccessPct} %, steal ≤ ${f.maxStealPct} %`;
  for (let i = 1; i <= Number(n); i++) {
    const fa = await runOnce(a, phase);
    const fb = await runOnce(b, phase);
    const drop = Math.max(fa.maxStealPct, fb.maxStealPct) > MAX_STEAL_PCT;
    if (!drop) kept.push([fa, fb]);
    console.log(`pair ${i}${drop ? " (dropped: steal)" : ""}\n  A ${show(fa)}\n  B ${show(fb)}`);
  }
  for (const [side, k] of [["A", 0], ["B", 1]] as const) {
    const m = (pick: (f: RunFigures) => number) =>
      Math.round(median(kept.map((p) => pick(p[k]))) * 100) / 100;
    console.log(
      `${side} over ${kept.length} pair(s): median ratio ${m((f) => f.ratio)}, ` +
        `first storm ${m((f) => f.firstStormMs)} ms, storm p99 ${m((f) => f.stormP99Ms)} ms, ` +
        `lowest storm success ${Math.min(...kept.map((p) => p[k].stormSuccessPct))} %`,
    );
  }
}
