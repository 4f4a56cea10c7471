/**
 * Durable Objects benchmark, in one run:
 *
 * - `do_rpc_per_s_one_object`: RPC calls per second from a tenant worker to
 *   one object (a method that touches no storage), 64 in flight.
 * - `do_rpc_per_s_100_objects`: the same spread over 100 objects.
 * - `do_counter_per_s`: increments per second of a storage-backed counter (one object).
 * - lost updates under the same concurrency (100 clients, one increment each,
 *   through HTTP): a KV read-modify-write counter (the baseline; expect
 *   losses) vs a Durable Object counter (expect 0).
 *
 * Run: `node_modules/deno/deno run -A --unstable-worker-options bench/durable_objects.ts`.
 *
 * @module
 */
import { parseConfigObject } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { MemoryLogger } from "../runtime/logger.ts";

const TENANT = `
import { DurableObject } from "worky";
export class Counter extends DurableObject {
  ping(x) { return x; }
  async increment() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    return n;
  }
  async value() { return (await this.ctx.storage.get("n")) ?? 0; }
}
async function pump(total, inFlight, call) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) await call(next++);
  }));
  return performance.now() - t0;
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, op, arg] = url.pathname.split("/");
    const n = Number(url.searchParams.get("n") ?? 0);
    if (op === "rpc") {
      const objects = Number(arg);
      const stubs = Array.from({ length: objects }, (_, i) => env.COUNTER.getByName("o" + i));
      await Promise.all(stubs.map((s) => s.ping(0))); // place them first
      return Response.json(await pump(n, 64, (i) => stubs[i % objects].ping(i)));
    }
    if (op === "counter") {
      const stub = env.COUNTER.getByName("bench-counter");
      return Response.json(await pump(n, 64, () => stub.increment()));
    }
    if (op === "do-inc") return Response.json(await env.COUNTER.getByName(arg).increment());
    if (op === "do-get") return Response.json(await env.COUNTER.getByName(arg).value());
    if (op === "kv-inc") {
      const v = Number((await env.KV.get(arg)) ?? 0) + 1;
      await env.KV.put(arg, String(v));
      return Response.json(v);
    }
    if (op === "kv-get") return Response.json(Number((await env.KV.get(arg)) ?? 0));
    return new Response("?", { status: 404 });
  },
};
`;

/** Measures DO RPC throughput and lost updates (KV baseline vs DO). */
export async function run(): Promise<Record<string, number | string>> {
  const dir = await Deno.makeTempDir({ prefix: "worky-bench-do-" });
  await Deno.writeTextFile(`${dir}/mod.js`, TENANT);
  const config = parseConfigObject({
    server: { port: 0, data_dir: `${dir}/.worky` },
    tenants: {
      bench: {
        module: "mod.js",
        routes: ["*/*"],
        kv: ["KV"],
        durable_objects: { COUNTER: "Counter" },
        limits: { max_workers: 4, max_concurrency_per_worker: 16 },
      },
    },
  }, { path: "<bench>", dir, env: {} });
  const server = await startServer({ config, logger: new MemoryLogger(), port: 0 });
  const get = async (path: string) => await (await fetch(server.url + path)).json();
  try {
    await get("/rpc/1?n=2000"); // warm up
    const CALLS = 20_000;
    const oneMs = await get(`/rpc/1?n=${CALLS}`) as number;
    const manyMs = await get(`/rpc/100?n=${CALLS}`) as number;
    const COUNTER_CALLS = 5_000;
    const counterMs = await get(`/counter/x?n=${COUNTER_CALLS}`) as number;

    const CLIENTS = 100;
    await Promise.all(Array.from({ length: CLIENTS }, () => get("/kv-inc/lost")));
    const kvFinal = await get("/kv-get/lost") as number;
    await Promise.all(Array.from({ length: CLIENTS }, () => get("/do-inc/lost")));
    const doFinal = await get("/do-get/lost") as number;
    return {
      do_rpc_per_s_one_object: Math.round(CALLS / (oneMs / 1000)),
      do_rpc_per_s_100_objects: Math.round(CALLS / (manyMs / 1000)),
      do_counter_increments_per_s: Math.round(COUNTER_CALLS / (counterMs / 1000)),
      lost_updates_kv_baseline: CLIENTS - kvFinal,
      lost_updates_do: CLIENTS - doFinal,
      lost_updates_clients: CLIENTS,
    };
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) console.log(await run());
