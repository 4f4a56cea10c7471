/**
 * `deno task bench`: Worky's speed and memory figures, each printed next to a
 * baseline measured in the same run on the same machine, and their ratio.
 *
 * - throughput: hello tenant through ingress + worker isolation vs bare Deno.serve (wrk)
 * - cold start: first response of a never-loaded tenant vs raw worker spawn-to-first-message
 * - RSS per idle tenant vs one bare Deno process
 * - KV get/put ops/s from inside a tenant vs the same store called directly on the host
 * - plus every `bench/<feature>.ts` that exports `run()` (scheduler, durable objects, isolation)
 *
 * Options (env): BENCH_SECONDS (wrk duration, default 5), BENCH_ONLY (comma list of sections).
 */
import { Runtime } from "../runtime/runtime.ts";
import { bundleModule, stopBundler } from "../runtime/bundler.ts";
import { MemoryLogger } from "../runtime/logger.ts";
import { NO_PERMISSIONS } from "../runtime/permissions.ts";
import { openDatabase } from "../control-plane/storage/database.ts";
import { LibsqlKvStore } from "../control-plane/storage/kv_store.ts";
import {
  ensureWrk,
  freePort,
  percentile,
  rssOf,
  startProcess,
  waitForHttp,
  wrk,
} from "./_tools.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO = Deno.execPath();
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const ONLY = Deno.env.get("BENCH_ONLY")?.split(",");
const want = (s: string) => !ONLY || ONLY.includes(s);

type Row = { figure: string; value: string; baseline: string; ratio: string; goal?: string };
const rows: Row[] = [];
function report(row: Row) {
  rows.push(row);
  console.log(
    `${row.figure.padEnd(44)} ${row.value.padStart(14)}   baseline ${
      row.baseline.padStart(14)
    }   ratio ${row.ratio.padStart(6)}${row.goal ? `   goal ${row.goal}` : ""}`,
  );
}
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

/** One row: `value` next to the `baseline` measured in the same run, and value / baseline. */
function compare(
  figure: string,
  value: number,
  baseline: number,
  options: { show?: (n: number) => string; goal?: string } = {},
) {
  const show = options.show ?? ((n: number) => fmt(n));
  report({
    figure,
    value: show(value),
    baseline: show(baseline),
    ratio: (value / baseline).toFixed(2),
    goal: options.goal,
  });
}

/** `worky serve` in a child process, as an operator would run it. */
const startWorky = (config: string) =>
  startProcess([
    DENO,
    "run",
    "-A",
    "--unstable-worker-options",
    `${ROOT}cli/main.ts`,
    "serve",
    "--no-supervise", // measure the server process itself
    "--config",
    config,
  ]);

async function throughput() {
  await ensureWrk();
  const tmp = await Deno.makeTempDir({ prefix: "worky-bench-" });
  // bare Deno.serve, same response
  const barePort = freePort();
  const bare = startProcess([
    DENO,
    "run",
    "-A",
    `${ROOT}bench/tenants/bare_server.ts`,
    String(barePort),
  ]);
  await waitForHttp(`http://127.0.0.1:${barePort}/`);
  await wrk(`http://127.0.0.1:${barePort}/`, 1); // warm-up
  const bareRps = await wrk(`http://127.0.0.1:${barePort}/`, SECONDS);
  await bare.stop();

  // Worky: the same hello through ingress + a permissioned worker
  const port = freePort();
  await Deno.writeTextFile(
    `${tmp}/worky.toml`,
    `[server]\nport = ${port}\ndata_dir = "${tmp}/.worky"\n[tenants.hello]\nmodule = "${ROOT}bench/tenants/hello.ts"\nroutes = ["*/*"]\n`,
  );
  const worky = startWorky(`${tmp}/worky.toml`);
  await waitForHttp(`http://127.0.0.1:${port}/`);
  await wrk(`http://127.0.0.1:${port}/`, 1);
  const workyRps = await wrk(`http://127.0.0.1:${port}/`, SECONDS);
  await worky.stop();
  compare("hello req/s (wrk -t1 -c32)", workyRps, bareRps, { goal: "≥ 0.35 (long run 0.5)" });
}

async function coldStart() {
  const N = 40;
  const bundle = await bundleModule(`${ROOT}bench/tenants/hello.ts`);
  // baseline: raw worker spawn → first message
  const raw: number[] = [];
  const src = URL.createObjectURL(new Blob(["postMessage(1)"], { type: "text/javascript" }));
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const w = new Worker(src, { type: "module", deno: { permissions: "none" } } as WorkerOptions);
    await new Promise((r) => (w.onmessage = r));
    raw.push(performance.now() - t0);
    w.terminate();
  }
  const runtime = new Runtime({ logger: new MemoryLogger() });
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    // a never-loaded tenant arriving at an idle server: the spare has booted
    await runtime.factory.sparesReady(NO_PERMISSIONS);
    const t0 = performance.now();
    const d = await runtime.deploy({
      tenant: `cold${i}`,
      version: "1",
      code: bundle.code,
      permissions: { ...NO_PERMISSIONS },
      vars: {},
      bindings: [],
      limits: {
        timeoutMs: 5000,
        maxWorkers: 1,
        maxConcurrencyPerWorker: 64,
        minWorkers: 0,
        idleMs: 60_000,
      },
    });
    const res = await d.fetch(new Request("http://bench/"), `cold-${i}`);
    await res.text();
    times.push(performance.now() - t0);
    await d.drain(0);
  }
  runtime.close();
  const ms = (n: number) => n.toFixed(1);
  compare("cold start, first response p50 (ms)", percentile(times, 50), percentile(raw, 50), {
    show: ms,
    goal: "p50 ≤ 15 ms",
  });
  compare("cold start, first response p99 (ms)", percentile(times, 99), percentile(raw, 99), {
    show: ms,
  });
}

async function idleRss() {
  const TENANTS = 20;
  const tmp = await Deno.makeTempDir({ prefix: "worky-bench-rss-" });
  /** RSS of a server with n tenants: warm (each answered once), then idle (scaled to zero). */
  const measure = async (n: number) => {
    const port = freePort();
    let toml = `[server]\nport = ${port}\ndata_dir = "${tmp}/.worky-${n}"\n`;
    for (let i = 0; i < n; i++) {
      toml +=
        `[tenants.t${i}]\nmodule = "${ROOT}bench/tenants/hello.ts"\nroutes = ["*/t${i}/*"]\n` +
        `[tenants.t${i}.limits]\nidle_timeout_ms = 2000\n`;
    }
    await Deno.writeTextFile(`${tmp}/worky-${n}.toml`, toml);
    const p = startWorky(`${tmp}/worky-${n}.toml`);
    await waitForHttp(`http://127.0.0.1:${port}/_worky/health`);
    for (let i = 0; i < n; i++) await (await fetch(`http://127.0.0.1:${port}/t${i}/`)).text();
    await new Promise((r) => setTimeout(r, 1000));
    const warm = await rssOf(p.pid);
    await new Promise((r) => setTimeout(r, 5000)); // idle_timeout_ms passes: pools scale to zero
    const idle = await rssOf(p.pid);
    await p.stop();
    return { warm, idle };
  };
  const one = await measure(1);
  const many = await measure(TENANTS + 1);
  // baseline: a bare Deno process holding one idle worker
  const bare = startProcess([DENO, "run", "-A", `${ROOT}bench/tenants/idle_worker.ts`]);
  await new Promise((r) => setTimeout(r, 1500));
  const bareRss = await rssOf(bare.pid);
  await bare.stop();
  const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
  const warm = (many.warm - one.warm) / TENANTS;
  const idle = (many.idle - one.idle) / TENANTS;
  compare("RSS per warm tenant, 1 worker (MB)", warm, bareRss, { show: mb });
  compare("RSS per idle tenant, scaled to zero (MB)", idle, bareRss, {
    show: mb,
    goal: "≤ 10 MB (baseline: a whole bare Deno process with one worker)",
  });
}

async function kvOps() {
  const tmp = await Deno.makeTempDir({ prefix: "worky-bench-kv-" });
  const db = await openDatabase(`file:${tmp}/kv.db`);
  const store = new LibsqlKvStore(db);
  const N = 2000;
  const value = new TextEncoder().encode("x".repeat(100));
  // baseline: the same store, called directly on the host
  let t0 = performance.now();
  for (let i = 0; i < N; i++) {
    await store.put("bench/direct", `k${i}`, value, { expiration: null, metadata: null });
  }
  const directPut = N / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < N; i++) await store.get("bench/direct", `k${i}`, Date.now());
  const directGet = N / ((performance.now() - t0) / 1000);

  const runtime = new Runtime({ logger: new MemoryLogger(), services: { kv: store } });
  const bundle = await bundleModule(`${ROOT}bench/tenants/kv_loop.ts`);
  const d = await runtime.deploy({
    tenant: "kvbench",
    version: "1",
    code: bundle.code,
    permissions: { ...NO_PERMISSIONS },
    vars: {},
    bindings: [{ name: "KV", kind: "kv", config: { namespace: "bench/tenant" } }],
    limits: {
      timeoutMs: 120_000,
      maxWorkers: 1,
      maxConcurrencyPerWorker: 64,
      minWorkers: 1,
      idleMs: 60_000,
    },
  });
  const res = await d.fetch(new Request(`http://bench/?n=${N}`), "kv");
  const { putOps, getOps } = await res.json();
  await d.drain(0);
  runtime.close();
  db.close();
  compare("KV put ops/s from a tenant (sequential)", putOps, directPut);
  compare("KV get ops/s from a tenant (sequential)", getOps, directGet);
}

async function features() {
  for (const name of ["scheduler", "durable_objects", "websocket", "cells", "isolation"]) {
    if (!want(name)) continue;
    const path = `${ROOT}bench/${name}.ts`;
    try {
      await Deno.stat(path);
    } catch {
      continue;
    }
    const mod = await import(path);
    const out: Record<string, number | string> = await mod.run();
    console.log(`\n[${name}]`);
    for (const [k, v] of Object.entries(out)) {
      console.log(`  ${k.padEnd(50)} ${typeof v === "number" ? fmt(v, 2) : v}`);
    }
  }
}

console.log(
  `Worky bench — ${Deno.build.target}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
);
if (want("throughput")) await throughput();
if (want("cold")) await coldStart();
if (want("rss")) await idleRss();
if (want("kv")) await kvOps();
await features();
await stopBundler();
// The isolation storm leaves zombie worker threads (Deno's terminate() cannot stop a
// synchronous loop): only ending the process stops them.
Deno.exit(0);
