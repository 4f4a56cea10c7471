/**
 * `deno task fuzz`: ≥100,000 generated inputs against the parsers that face
 * the outside (worky.toml, route patterns, HTTP at the ingress, in process and
 * over real sockets). Prints counts and findings; exits 1 on any finding.
 * `FUZZ_SEED` picks the seed (default: time), `FUZZ_SCALE` multiplies counts.
 */
import {
  fuzzConfig,
  fuzzHandler,
  fuzzRoutes,
  fuzzSocket,
  startFuzzTarget,
} from "../tests/fuzz/fuzz_run.ts";

const seed = Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 1_000_000);
const scale = Number(Deno.env.get("FUZZ_SCALE") ?? 1);
console.log(`fuzz seed ${seed}`);

const f = await startFuzzTarget();

const runs = [
  ["worky.toml", () => fuzzConfig(seed, 50_000 * scale)],
  ["routes", () => fuzzRoutes(seed + 1, 30_000 * scale)],
  ["ingress (handler)", () => fuzzHandler(f.server, seed + 2, 20_000 * scale)],
  ["ingress (sockets)", () => fuzzSocket(f.server, "x", seed + 3, 3_000 * scale)],
] as const;
let total = 0;
let findings = 0;
for (const [name, run] of runs) {
  const t = performance.now();
  const report = await run();
  total += report.inputs;
  findings += report.findings.length;
  console.log(
    `${name}: ${report.inputs} inputs, ${report.findings.length} findings ` +
      `(${Math.round(performance.now() - t)} ms)`,
  );
  for (const line of report.findings.slice(0, 20)) console.log(`  ${line}`);
}
const kept = await (await f.fetch("/")).text();
if (kept !== "kept") {
  findings++;
  console.log(`stored data lost: ${kept}`);
}
await f.close();
console.log(`fuzz: ${total} inputs, ${findings} findings`);
if (findings > 0) Deno.exit(1);
