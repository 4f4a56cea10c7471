/**
 * A Worky server in a child process for the multi-process tests:
 * `_child.ts <worky.toml> <leaseMs>`. Prints `LISTENING <url>` once serving,
 * then runs until killed.
 */
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";

const [configPath, leaseMs] = Deno.args;
const config = await loadConfig(configPath, { env: {} });
const server = await startServer({
  config,
  port: 0,
  hostname: "127.0.0.1",
  logger: new MemoryLogger(),
  durableObjects: { leaseMs: Number(leaseMs), tickMs: 200 },
});
const line = new TextEncoder().encode(`LISTENING ${server.url}\n`);
let written = 0;
while (written < line.length) written += Deno.stdout.writeSync(line.subarray(written));
