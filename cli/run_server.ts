/**
 * Shared by `worky dev` and `worky serve`: load the config, start the server,
 * stop cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { isRegistrySpec } from "../control-plane/registry/registry_config.ts";
import { stopWhenSupervisorGone, SUPERVISED_ENV } from "./supervisor.ts";
import { memoryWatchdog } from "../runtime/memory/memory_watchdog.ts";

export interface RunServerOptions {
  config: string;
  port?: number;
  hostname?: string;
  watch: boolean;
}

/** Exit code of a supervised server that restarts because of a runaway worker thread. */
export const RUNAWAY_EXIT_CODE = 75;

export async function runServer(opts: RunServerOptions): Promise<void> {
  const config = await loadConfig(opts.config);
  // Unsigned local source runs in dev, and in serve only while no [registry] trusted_keys are
  // configured (trusting keys turns signature enforcement on).
  const allowUnsigned = opts.watch || !(config.registry?.trustedKeys.length);
  for (const t of config.tenants) {
    if (allowUnsigned && !isRegistrySpec(t.module)) {
      console.error(`worky: WARNING: tenant ${t.name} runs UNSIGNED local source ${t.module}`);
    }
  }
  const server = await startServer({
    config,
    allowUnsigned,
    watch: opts.watch,
    port: opts.port,
    hostname: opts.hostname,
  });
  const stop = () => {
    server.close().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  // under `cli/supervisor.ts`: stop when the supervisor is gone (even kill -9), never orphaned
  if (Deno.env.get(SUPERVISED_ENV)) {
    stopWhenSupervisorGone(stop);
    // a worker thread Deno can't stop is allocating toward V8's abort: restart now instead
    memoryWatchdog().onRunaway = () => Deno.exit(RUNAWAY_EXIT_CODE);
  }
  console.error(
    `worky: serving ${config.tenants.length} tenant(s) on ${server.url}` +
      (opts.watch ? " (watching sources)" : ""),
  );
  for (const t of config.tenants) console.error(`  ${t.name.padEnd(16)} ${t.routes.join("  ")}`);
}
