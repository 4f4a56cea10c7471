/**
 * Isolation under a storm: the good tenant's success rate and p99 latency
 * while bad tenants loop, crash, reject, exit, recurse, allocate and answer
 * huge bodies, against a quiet run of the same good traffic. The server runs
 * as its own process (`worky serve --no-supervise`, as an operator would run
 * it); this process only sends and times the good traffic, the bad traffic
 * comes from `bench/isolation_storm.ts` in a process of its own. Bad tenants as threads (the
 * default) and as cells (`isolation = "cell"`, the setting for untrusted
 * tenants), each under a paced storm (the same bad traffic for both) and a
 * flood (see {@link phase}). `run()` returns all four, with their ratios to the
 * quiet run.
 */
import { freePort, startProcess, waitForHttp } from "./_tools.ts";

const ROOT = new URL("../", import.meta.url).pathname;

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

/** CPU ticks per worker thread of process `pid` (Linux: threads are named `worker-N`). */
function workerThreadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
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
async function spinningWorkerThreads(pid: number): Promise<number> {
  const a = workerThreadTicks(pid);
  await new Promise((r) => setTimeout(r, 1000));
  const b = workerThreadTicks(pid);
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

/** Requests per second each bad tenant gets in a paced storm. */
const BAD_RPS = Number(Deno.env.get("BENCH_ISOLATION_BAD_RPS") ?? 50);

/**
 * One server (a child process) with the good tenant and the bad ones, quiet then storm.
 * `paced`: each bad tenant gets BAD_RPS requests/s, answered or not (the same storm whatever
 * the isolation). `flood`: one client per bad tenant sends its next request as soon as the last
 * one answered, so fast-failing tenants draw far more requests than slow ones; that measures
 * request-rate contention on the shared ingress as much as isolation.
 */
async function phase(isolation: "thread" | "cell", kind: "paced" | "flood") {
  const dir = await Deno.makeTempDir({ prefix: `worky-bench-isolation-${isolation}-` });
  const port = freePort();
  let toml =
    `[server]\nport = ${port}\n[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n`;
  await Deno.writeTextFile(
    `${dir}/good.ts`,
    `export default { fetch: () => new Response("good") };`,
  );
  for (const [name, body] of Object.entries(BAD)) {
    await Deno.writeTextFile(`${dir}/${name}.ts`, `export default { async fetch() { ${body} } };`);
    toml += `[tenants.${name}]\nmodule = "${name}.ts"\nroutes = ["*/${name}/*"]\n` +
      `[tenants.${name}.limits]\ntimeout_ms = 300\nmemory_mb = 64\nisolation = "${isolation}"\n`;
  }
  await Deno.writeTextFile(`${dir}/worky.toml`, toml);
  const server = startProcess([
    Deno.execPath(),
    "run",
    "-A",
    "--unstable-worker-options",
    `${ROOT}cli/main.ts`,
    "serve",
    "--no-supervise",
    "--config",
    `${dir}/worky.toml`,
  ]);
  const url = `http://127.0.0.1:${port}`;
  const REQUESTS = Number(Deno.env.get("BENCH_ISOLATION_REQUESTS") ?? 10000);
  const CLIENTS = 4;
  try {
    await waitForHttp(`${url}/_worky/health`);
    await goodTraffic(url, 200, CLIENTS); // warm up
    const quiet = await goodTraffic(url, REQUESTS, CLIENTS);
    const only = Deno.env.get("BENCH_ISOLATION_ONLY");
    const names = Object.keys(BAD).filter((n) => !only || only.split(",").includes(n));
    // the bad traffic comes from another process (bench/isolation_storm.ts): this one only times
    const generator = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}bench/isolation_storm.ts`,
        url,
        kind,
        String(BAD_RPS),
        names.join(","),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    await new Promise((r) => setTimeout(r, 500)); // the storm is under way
    const stormy = await goodTraffic(url, REQUESTS, CLIENTS);
    await generator.stdin.close();
    const { bad } = JSON.parse(new TextDecoder().decode((await generator.output()).stdout)) as {
      bad: number;
    };
    const spinning = await spinningWorkerThreads(server.pid);
    const health = await (await fetch(`${url}/_worky/health`)).json() as {
      tenants: { tenant: string; recycled?: number; isolation?: string }[];
    };
    const bads = health.tenants.filter((t) => t.tenant in BAD);
    const respawns = bads.map((t) => `${t.tenant}:${t.recycled ?? "?"}`).join(" ");
    const inCells = bads.filter((t) => t.isolation === "cell").map((t) => t.tenant).join(" ");
    return { quiet, stormy, bad, spinning, respawns, inCells };
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const pct = (r: { ok: number; total: number }) => Math.round((r.ok / r.total) * 100_000) / 1000;
const ms = (x: number) => Math.round(x * 100) / 100;

/** Runs the quiet and storm phases, bad tenants as threads and as cells. */
export async function run(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  for (
    const [isolation, kind] of [
      ["thread", "paced"],
      ["cell", "paced"],
      ["thread", "flood"],
      ["cell", "flood"],
    ] as const
  ) {
    const key = `${isolation} ${kind}`;
    const phases = Deno.env.get("BENCH_ISOLATION_PHASES"); // e.g. "thread paced,cell flood"
    if (phases && !phases.split(",").includes(key)) continue;
    const r = await phase(isolation, kind);
    out[`${key}: good_success_quiet_pct`] = pct(r.quiet);
    out[`${key}: good_p99_quiet_ms`] = ms(r.quiet.p99);
    out[`${key}: good_success_storm_pct`] = pct(r.stormy);
    out[`${key}: good_p99_storm_ms`] = ms(r.stormy.p99);
    out[`${key}: p99_storm_over_quiet`] = ms(r.stormy.p99 / r.quiet.p99);
    out[`${key}: bad_requests_during_storm`] = r.bad;
    out[`${key}: spinning_worker_threads_after_storm`] = r.spinning;
    out[`${key}: respawns_per_bad_tenant`] = r.respawns;
    out[`${key}: bad_tenants_in_cells_after_storm`] = r.inCells || "none";
  }
  return out;
}

if (import.meta.main) {
  console.log(await run());
  // a storm leaves terminated workers behind that can hold the event loop open a while
  Deno.exit(0);
}
