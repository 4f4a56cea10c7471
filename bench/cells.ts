/**
 * Cells benchmark, in one run (same server, same client): hello requests/s through a tenant in
 * a cell (relayed over a unix socket to a child process) vs an in-process tenant, with wrk
 * -t1 -c32 for the same duration each.
 *
 * Run: `node_modules/deno/deno run -A --unstable-worker-options bench/cells.ts`.
 *
 * @module
 */
import { parseConfigObject } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { MemoryLogger } from "../runtime/logger.ts";
import { ensureWrk, wrk } from "./_tools.ts";

const HELLO = `export default { fetch: () => new Response("hello") };`;
const SECONDS = 5;

/** Measures hello req/s through a cell and in-process, in the same run. */
export async function run(): Promise<Record<string, number | string>> {
  await ensureWrk();
  const dir = await Deno.makeTempDir({ prefix: "worky-bench-cells-" });
  await Deno.writeTextFile(`${dir}/hello.js`, HELLO);
  const config = parseConfigObject({
    server: { port: 0, data_dir: `${dir}/.worky` },
    tenants: {
      thread: { module: "hello.js", routes: ["*/thread/*"] },
      cell: { module: "hello.js", routes: ["*/cell/*"], limits: { isolation: "cell" } },
    },
  }, { path: "<bench>", dir, env: {} });
  const server = await startServer({ config, logger: new MemoryLogger(), port: 0 });
  try {
    await wrk(`${server.url}/thread/`, 1); // warm up both
    await wrk(`${server.url}/cell/`, 1);
    const inProcess = await wrk(`${server.url}/thread/`, SECONDS);
    const cell = await wrk(`${server.url}/cell/`, SECONDS);
    return {
      cells_hello_rps_in_process: Math.round(inProcess),
      cells_hello_rps_cell: Math.round(cell),
      cells_throughput_vs_in_process: `${Math.round((cell / inProcess - 1) * 100)}%`,
    };
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) console.log(await run());
