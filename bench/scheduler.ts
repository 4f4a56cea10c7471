/**
 * Scheduler benchmark: how late handlers start after their due time.
 *
 * - timer service: N timers due ~50 ms apart on a libSQL file, real clock;
 *   delay = handler start − due time (claim UPDATE included).
 * - baseline: bare `setTimeout` aimed at the same kind of due times, measured
 *   the same way, in the same run.
 * - cron end to end: a real server, a tenant with `* * * * * *`; delay =
 *   `Date.now()` inside the tenant's `scheduled()` − `controller.scheduledTime`.
 *
 * Goal (issue 4): p99 ≤ 20 ms on an idle machine.
 *
 * Run alone: `node_modules/deno/deno run -A --unstable-worker-options bench/scheduler.ts`.
 */
import { openDatabase } from "../control-plane/storage/database.ts";
import { TimerService } from "../control-plane/scheduler/timer_service.ts";
import { parseConfig } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { MemoryLogger } from "../runtime/logger.ts";

const N = Number(Deno.env.get("BENCH_TIMERS") ?? 60);
const GAP_MS = 50;
const CRON_TICKS = Number(Deno.env.get("BENCH_CRON_TICKS") ?? 6);

const nowPrecise = () => performance.timeOrigin + performance.now();

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const round = (n: number) => Math.round(n * 100) / 100;

async function timerServiceDelays(dir: string): Promise<number[]> {
  const db = await openDatabase(`file:${dir}/bench.db`);
  const timers = new TimerService({ client: db.client });
  const delays: number[] = [];
  const done = Promise.withResolvers<void>();
  timers.on("bench", (t) => {
    delays.push(nowPrecise() - t.dueAt);
    if (delays.length === N) done.resolve();
  });
  timers.start();
  const start = Math.ceil(Date.now()) + 200;
  for (let i = 0; i < N; i++) await timers.schedule("bench", `t${i}`, start + i * GAP_MS);
  await done.promise;
  await timers.close();
  db.close();
  return delays;
}

async function setTimeoutDelays(): Promise<number[]> {
  const delays: number[] = [];
  const done = Promise.withResolvers<void>();
  const start = Math.ceil(Date.now()) + 200;
  for (let i = 0; i < N; i++) {
    const due = start + i * GAP_MS;
    setTimeout(() => {
      delays.push(nowPrecise() - due);
      if (delays.length === N) done.resolve();
    }, due - Date.now());
  }
  await done.promise;
  return delays;
}

async function cronDelays(dir: string): Promise<number[]> {
  await Deno.writeTextFile(
    `${dir}/cron.ts`,
    `export default { fetch() { return new Response("ok"); },
      scheduled(c) { console.log("late " + (Date.now() - c.scheduledTime)); } };`,
  );
  const config = parseConfig(
    `[server]\ndata_dir = "${dir}/.worky"\n[tenants.tick]\nmodule = "cron.ts"\n` +
      `routes = ["tick.localhost/*"]\ncron = ["* * * * * *"]\n`,
    { path: `${dir}/worky.toml`, dir, env: {} },
  );
  const logger = new MemoryLogger();
  const server = await startServer({ config, port: 0, hostname: "127.0.0.1", logger });
  const lates = () =>
    logger.entries.flatMap((e) =>
      String(e.msg).startsWith("late ") ? [Number(String(e.msg).slice(5))] : []
    );
  while (lates().length < CRON_TICKS) await new Promise((r) => setTimeout(r, 100));
  await server.close();
  return lates().slice(0, CRON_TICKS);
}

/** Runs the scheduler benchmark; figures in milliseconds. */
export async function run(): Promise<Record<string, number | string>> {
  const dir = await Deno.makeTempDir({ prefix: "worky-bench-scheduler-" });
  try {
    const service = await timerServiceDelays(dir);
    const baseline = await setTimeoutDelays();
    const cron = await cronDelays(dir);
    return {
      timers: N,
      timer_service_p50_ms: round(pct(service, 50)),
      timer_service_p99_ms: round(pct(service, 99)),
      set_timeout_baseline_p50_ms: round(pct(baseline, 50)),
      set_timeout_baseline_p99_ms: round(pct(baseline, 99)),
      cron_ticks: cron.length,
      cron_to_handler_p50_ms: round(pct(cron, 50)),
      cron_to_handler_max_ms: round(Math.max(...cron)),
      goal: "p99 <= 20 ms",
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) console.log(await run());
