/**
 * Shared by `worky dev` and `worky serve`: load the config, start the server,
 * stop gracefully on SIGINT/SIGTERM (stop accepting, finish in-flight requests
 * within {@link DRAIN_MS}, release leases, close storage, exit 0).
 *
 * Zombie worker threads (`runtime/memory/zombie_threads.ts`) are recorded in
 * `<dataDir>/quarantine.json`; a supervised server then asks its supervisor for a
 * graceful replacement (the only way to get the core back), an unsupervised one
 * logs an error and keeps running.
 */
import { loadConfig } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { isRegistrySpec } from "../control-plane/registry/registry_config.ts";
import { requestReplacement, stopWhenSupervisorGone, SUPERVISED_ENV } from "./supervisor.ts";
import { memoryWatchdog } from "../runtime/memory/memory_watchdog.ts";
import { type Zombie, zombieThreads } from "../runtime/memory/zombie_threads.ts";
import { recordQuarantine } from "../runtime/memory/quarantine.ts";
import type { Logger } from "../runtime/logger.ts";
import type { DeploymentManager } from "../control-plane/deployments.ts";

export interface RunServerOptions {
  config: string;
  port?: number;
  hostname?: string;
  watch: boolean;
}

/** Exit code of a supervised server that restarts because of a runaway worker thread. */
export const RUNAWAY_EXIT_CODE = 75;
/** Bound on finishing in-flight requests and closing after SIGINT/SIGTERM. */
export const DRAIN_MS = 10_000;
/**
 * A runaway allocating thread aborts the process 4–13 s after its loop starts: if no
 * replacement took over (SIGTERM) within this time, exit with {@link RUNAWAY_EXIT_CODE}.
 */
export const RUNAWAY_HANDOFF_MS = 3_000;

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
  const supervisorRun = Deno.env.get(SUPERVISED_ENV) || undefined;
  const supervised = supervisorRun !== undefined;
  const server = await startServer({
    config,
    allowUnsigned,
    watch: opts.watch,
    port: opts.port,
    hostname: opts.hostname,
    // the supervisor's replacement binds the same port before this process leaves
    reusePort: supervised,
    supervisorRun,
  });
  const logger = server.runtime.logger;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    logger.log({
      level: "info",
      msg: `stopping: no new connections; finishing in-flight requests (at most ${DRAIN_MS} ms)`,
    });
    const bound = setTimeout(() => {
      logger.log({
        level: "warn",
        msg: `stopping: requests still in flight after ${DRAIN_MS} ms; exiting anyway`,
      });
      Deno.exit(0);
    }, DRAIN_MS);
    server.close().then(
      () => Deno.exit(0),
      (err) => {
        clearTimeout(bound);
        logger.log({ level: "error", msg: `stopping failed: ${(err as Error)?.stack ?? err}` });
        Deno.exit(1);
      },
    );
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  // under `cli/supervisor.ts`: stop when the supervisor is gone (even kill -9), never orphaned
  if (supervised) {
    stopWhenSupervisorGone(stop);
    // a worker thread Deno can't stop is allocating toward V8's abort: hand over now
    memoryWatchdog().onRunaway = (tenant, mb) => {
      requestReplacement(
        logger,
        `a stopped worker of tenant "${tenant}" keeps allocating (+${mb} MiB)`,
      );
      const t = setTimeout(() => stopping || Deno.exit(RUNAWAY_EXIT_CODE), RUNAWAY_HANDOFF_MS);
      Deno.unrefTimer(t);
    };
  }
  watchZombies(config.server.dataDir, supervised, logger, server.deployments);
  console.error(
    `worky: serving ${config.tenants.length} tenant(s) on ${server.url}` +
      (opts.watch ? " (watching sources)" : ""),
  );
  for (const t of config.tenants) console.error(`  ${t.name.padEnd(16)} ${t.routes.join("  ")}`);
}

/**
 * Zombie threads (already at idle CPU priority, `zombie_threads.ts`): quarantine the tenant and
 * move it into a cell of its own now, so its next loop can be stopped by killing that cell; then
 * replace this process to get the thread back (supervised) or say so.
 */
function watchZombies(
  dataDir: string,
  supervised: boolean,
  logger: Logger,
  deployments: DeploymentManager,
) {
  const zombies = zombieThreads();
  zombies.logger = logger;
  let asked = false;
  zombies.onZombie = (z: Zombie) => {
    const why = `zombie thread ${z.name} kept ${Math.round(z.cpu * 100)}% of a core ` +
      `${z.afterMs} ms after terminate() (stopped because: ${z.reason})`;
    recordQuarantine(dataDir, z.tenant, why)
      .then(() => deployments.isolate(z.tenant))
      .then((moved) => {
        if (!moved) return;
        logger.log({
          level: "warn",
          msg: `tenant "${z.tenant}" moved into a cell of its own (${why})`,
          tenant: z.tenant,
        });
      })
      .catch((err) =>
        logger.log({
          level: "error",
          msg: `could not quarantine tenant "${z.tenant}" or move it into a cell: ${
            (err as Error)?.message ?? err
          }`,
          tenant: z.tenant,
        })
      );
    if (supervised) {
      if (!asked) requestReplacement(logger, `tenant "${z.tenant}": ${why}`);
      asked = true;
      return;
    }
    logger.log({
      level: "error",
      msg: `not supervised (--no-supervise): this process keeps running with zombie thread ` +
        `${z.name} (tid ${z.tid}) of tenant "${z.tenant}" using a core whenever no other ` +
        `thread wants it (SCHED_IDLE); restart it to get the thread back ` +
        `(${zombies.live().length} zombie thread(s) now)`,
      tenant: z.tenant,
      thread: z.name,
    });
  };
}
