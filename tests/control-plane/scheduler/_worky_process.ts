/**
 * A Worky server in its own process, for the multi-process tests:
 * `deno run -A --unstable-worker-options _worky_process.ts <worky.toml> <owner>`.
 * Prints `{"ready":true,"url":…}` once serving; SIGTERM closes it.
 */
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";

const [configPath, owner] = Deno.args;
const config = await loadConfig(configPath, { env: {} });
const server = await startServer({
  config,
  port: 0,
  hostname: "127.0.0.1",
  logger: new MemoryLogger(),
  spares: 0,
  scheduler: { owner, refreshMs: 100, leaseMs: 2_000, leaseMarginMs: 500 },
});
console.log(JSON.stringify({ ready: true, url: server.url, owner }));
Deno.addSignalListener("SIGTERM", async () => {
  await server.close();
  Deno.exit(0);
});
