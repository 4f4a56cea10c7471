/**
 * Isolation under a storm: the good tenant's success rate and p99 latency
 * while bad tenants loop, crash, reject, exit, recurse, allocate and answer
 * huge bodies, against a quiet run of the same good traffic in the same
 * process. `run()` returns both, and their ratio.
 */
import { loadConfig } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { MemoryLogger } from "../runtime/logger.ts";

const BAD: Record<string, string> = {
  loop: `while (true) {}`,
  crash: `throw new Error("crash");`,
  reject: `Promise.reject(new Error("unhandled")); return new Response("x");`,
  exit: `Deno.exit(1);`,
  recursion: `const f = (n) => f(n + 1) + 1; return new Response(String(f(0)));`,
  huge: `return new Response("x".repeat(8 * 1024 * 1024));`,
  hog: `const keep = []; for (let i = 0; i < 200; i++) { keep.push(new Array(262144).fill(i + 0.5));
    await new Promise((r) => setTimeout(r, 1)); } return new Response(String(keep.length));`,
};

/** CPU ticks per worker thread of this process (Linux: threads are named `worker-N`). */
function workerThreadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      if (!stat.includes("(worker-")) continue;
      const f = stat.slice(stat.indexOf(")") + 2).split(" ");
      out.set(e.name, Number(f[11]) + Number(f[12]));
    }
  } catch { /* not Linux */ }
  return out;
}

/**
 * Worker threads still burning CPU once every tenant is idle: timed-out busy loops that
 * `worker.terminate()` did not stop (Deno 2.9.6 does not interrupt synchronous JS).
 */
async function spinningWorkerThreads(): Promise<number> {
  const a = workerThreadTicks();
  await new Promise((r) => setTimeout(r, 1000));
  const b = workerThreadTicks();
  let n = 0;
  for (const [tid, ticks] of b) if (ticks - (a.get(tid) ?? ticks) >= 50) n++; // ≥ 0.5 s of CPU
  return n;
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? 0;
}

async function goodTraffic(url: string, requests: number, clients: number) {
  const latencies: number[] = [];
  let ok = 0;
  let sent = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (sent < requests) {
      sent++;
      const t = performance.now();
      try {
        const res = await fetch(`${url}/good/`);
        if ((await res.text()) === "good" && res.status === 200) ok++;
      } catch { /* counted as a failure */ }
      latencies.push(performance.now() - t);
    }
  }));
  return { ok, total: sent, p99: p99(latencies) };
}

/** Runs the quiet and storm phases; returns success rates, p99s and their ratio. */
export async function run(): Promise<Record<string, number | string>> {
  const dir = await Deno.makeTempDir({ prefix: "worky-bench-isolation-" });
  let toml = `[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n`;
  await Deno.writeTextFile(
    `${dir}/good.ts`,
    `export default { fetch: () => new Response("good") };`,
  );
  for (const [name, body] of Object.entries(BAD)) {
    await Deno.writeTextFile(
      `${dir}/${name}.ts`,
      `export default { async fetch() { ${body} } };`,
    );
    toml += `[tenants.${name}]\nmodule = "${name}.ts"\nroutes = ["*/${name}/*"]\n` +
      `[tenants.${name}.limits]\ntimeout_ms = 300\nmemory_mb = 64\n`;
  }
  await Deno.writeTextFile(`${dir}/worky.toml`, toml);
  const server = await startServer({
    config: await loadConfig(`${dir}/worky.toml`, { env: {} }),
    port: 0,
    hostname: "127.0.0.1",
    logger: new MemoryLogger(),
  });
  const REQUESTS = Number(Deno.env.get("BENCH_ISOLATION_REQUESTS") ?? 3000);
  const CLIENTS = 4;
  try {
    await goodTraffic(server.url, 200, CLIENTS); // warm up
    const quiet = await goodTraffic(server.url, REQUESTS, CLIENTS);
    let storming = true;
    let bad = 0;
    const only = Deno.env.get("BENCH_ISOLATION_ONLY");
    const storm = Promise.all(
      Object.keys(BAD).filter((n) => !only || only.split(",").includes(n)).map(async (name) => {
        while (storming) {
          try {
            const res = await fetch(`${server.url}/${name}/`);
            await res.body?.cancel();
          } catch { /* expected */ }
          bad++;
        }
      }),
    );
    const stormy = await goodTraffic(server.url, REQUESTS, CLIENTS);
    storming = false;
    await storm;
    const spinning = await spinningWorkerThreads();
    // workers respawned per bad tenant (the crash-loop backoff keeps these low)
    const respawns = Object.keys(BAD).map((n) =>
      `${n}:${server.deployments.get(n)?.current.stats().recycled ?? "?"}`
    ).join(" ");
    return {
      good_success_quiet_pct: Math.round((quiet.ok / quiet.total) * 100_000) / 1000,
      good_p99_quiet_ms: Math.round(quiet.p99 * 100) / 100,
      good_success_storm_pct: Math.round((stormy.ok / stormy.total) * 100_000) / 1000,
      good_p99_storm_ms: Math.round(stormy.p99 * 100) / 100,
      p99_storm_over_quiet: Math.round((stormy.p99 / quiet.p99) * 100) / 100,
      bad_requests_during_storm: bad,
      spinning_worker_threads_after_storm: spinning,
      respawns_per_bad_tenant: respawns,
    };
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await run());
  // a storm leaves terminated workers behind that can hold the event loop open a while
  Deno.exit(0);
}
