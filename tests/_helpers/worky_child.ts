/**
 * A Worky server in its own process, with the tuning `worky serve` has no flags for (short
 * leases, fast refresh), for the multi-process tests:
 * `worky_child.ts <worky.toml> [<tuning as JSON: spares, scheduler, durableObjects>]`.
 * Prints `worky listening on <url>` once serving; SIGTERM closes it. Started by
 * {@link ./worky_process.ts}.
 */
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { startServer } from "../../control-plane/server.ts";
import { MemoryLogger } from "../../runtime/logger.ts";
import type { WorkyTuning } from "./worky_process.ts";

const [configPath, tuning = "{}"] = Deno.args;
const config = await loadConfig(configPath, { env: {} });
const server = await startServer({
  ...(JSON.parse(tuning) as WorkyTuning),
  config,
  port: 0,
  hostname: "127.0.0.1",
  logger: new MemoryLogger(),
});
console.log(`worky listening on ${server.url}`);
Deno.addSignalListener("SIGTERM", async () => {
  await server.close();
  Deno.exit(0);
});
