/**
 * Wires the control plane: storage, runtime, deployments, ingress and the
 * admin API, behind one `Deno.serve`. `/_worky/*` goes to Hono; everything
 * else is tenant traffic and takes the ingress fast path.
 */
import { presizeFdTable } from "../runtime/fd_table.ts";
import { assertNoPermissionPrompts } from "./permission_prompts.ts";
import { Hono } from "hono";
import type { WorkyConfig } from "./config/types.ts";
import { openDatabase, type WorkyDatabase } from "./storage/database.ts";
import { LibsqlKvStore } from "./storage/kv_store.ts";
import { Runtime } from "../runtime/runtime.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { JsonLogger, type Logger } from "../runtime/logger.ts";
import { TenantLogLimiter } from "../runtime/log_limiter.ts";
import { DeploymentManager, onCurrent } from "./deployments.ts";
import { CellLauncher } from "./cells/cell_launcher.ts";
import { Deployment } from "../runtime/deployment.ts";
import { createIngress, splitUrl } from "./ingress.ts";
import { healthRoutes } from "./admin/health.ts";
import { errorResponse } from "./http/error_response.ts";
import { newRequestId } from "./http/request_id.ts";
import { stopBundler } from "../runtime/bundler.ts";
import { SourceWatcher } from "./dev/source_watcher.ts";
import { protectControlPlanePort, type Resolver } from "../runtime/egress.ts";
import { createTenantGuard } from "./limits/tenant_guard.ts";
import { openSecretStore } from "./secrets/open_secret_store.ts";
import { Scheduler, type SchedulerOptions } from "./scheduler/scheduler.ts";
import { DEV_SCHEDULED_PATH, devScheduledRoute } from "./scheduler/dev_scheduled_route.ts";
import { createRegistryPlane, type RegistryPlane } from "./registry/plane.ts";
import {
  cellOwnerPrefix,
  type DurableObjectsOptions,
  type DurableObjectsService,
  startDurableObjects,
} from "./durable_objects/service.ts";

export interface ServerOptions {
  config: WorkyConfig;
  logger?: Logger;
  /** Log lines per tenant per second that reach `logger` (default 100; 0 = all). */
  tenantLogLinesPerSecond?: number;
  clock?: Clock;
  /** Watch tenant sources and redeploy on change. */
  watch?: boolean;
  /** Listen on this port instead of the config's (0 = ephemeral). */
  port?: number;
  hostname?: string;
  /** Pre-spawned spare workers per permission set (default 1). */
  spares?: number;
  /** Timer, lease and refresh tuning of the scheduler (cron, queues). */
  scheduler?: SchedulerOptions;
  /** Run tenants whose module is unsigned local source (dev; default true). `serve` passes false. */
  allowUnsigned?: boolean;
  /** Extra read-only folders of artifacts to run (a compiled binary's embedded ones). */
  artifactDirs?: string[];
  /** Durable Objects tuning (idle eviction, leases, tick). */
  durableObjects?: DurableObjectsOptions;
  /** Listen with SO_REUSEPORT (Linux): a supervised replacement binds the port before we leave. */
  reusePort?: boolean;
  /**
   * The supervisor run this server belongs to (`WORKY_SUPERVISED`, `cli/supervisor.ts`): its
   * moves into cells outlive it for the next processes of the run (`cells/cell_moves.ts`).
   */
  supervisorRun?: string;
  /** Resolver of the tenants' egress policies and proxy (default: the system's; tests inject). */
  egressResolver?: Resolver;
}

/** A running Worky server. */
export interface WorkyServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly port: number;
  readonly deployments: DeploymentManager;
  readonly db: WorkyDatabase;
  readonly runtime: Runtime;
  /** Timer service, cron triggers and queues. */
  readonly scheduler: Scheduler;
  /** Registry, API tokens, tenant deployer (deploy/rollback). */
  readonly registry: RegistryPlane;
  /** Live Durable Objects, their storage, leases and alarms. */
  readonly durableObjects: DurableObjectsService;
  /** Handles one request as the server would (no socket). */
  fetch(request: Request): Promise<Response>;
  /** Stops listening, drains tenants, closes storage. */
  close(): Promise<void>;
}

/**
 * Starts a server from a validated config. Nothing listens until every
 * tenant has bundled and loaded; any failure stops what started and throws.
 */
export async function startServer(options: ServerOptions): Promise<WorkyServer> {
  assertNoPermissionPrompts(); // tenants run in this process: Deno must not ask the terminal
  // grown now, on a quiet box: growing it while serving waits out an RCU grace period (fd_table.ts)
  presizeFdTable();
  const { config } = options;
  // a tenant that logs or fails on every request of a flood gets a bounded share of the log
  const logger = new TenantLogLimiter(
    options.logger ?? new JsonLogger(),
    options.tenantLogLinesPerSecond,
  );
  const clock = options.clock ?? systemClock;
  const db = await openDatabase(config.server.dbUrl);
  const secrets = await openSecretStore(db, config.server.dataDir).catch((err) => {
    db.close();
    throw err;
  });
  const scheduler = new Scheduler({ client: db.client, clock, logger, ...options.scheduler });
  const durableObjects = startDurableObjects({
    ...options.durableObjects,
    db: db.db,
    dataDir: config.server.dataDir,
    timers: scheduler.timers, // alarms are "do-alarm" timers; fired once the scheduler starts
    waitForLeases: "cells", // a tenant back from a draining cell waits for what it releases
    clock,
    logger,
    // the objects of a tenant in a cell live there: its due alarms fire there
    routeAlarm: (address) => {
      const current = deployments.get(address.tenant)?.current;
      return current instanceof Deployment ? undefined : current;
    },
  });
  const runtime = new Runtime({
    logger: scheduler.logger,
    clock,
    spares: options.spares,
    egressResolver: options.egressResolver,
    services: {
      kv: new LibsqlKvStore(db),
      secrets,
      queues: scheduler.queues,
      durableObjects: durableObjects.directory,
    },
  });
  const registry = createRegistryPlane({
    config,
    database: db,
    logger,
    allowUnsigned: options.allowUnsigned,
    artifactDirs: options.artifactDirs,
  });
  // tenants with limits.isolation = "cell" (or quarantined) run in child processes
  const cells = new CellLauncher({
    dataDir: config.server.dataDir,
    dbUrl: config.server.dbUrl,
    logger,
    secrets,
    egressProxy: runtime.egressProxy,
    egressResolver: options.egressResolver,
    durableObjects: options.durableObjects,
    objectOwnerPrefix: cellOwnerPrefix(durableObjects.backend.owner),
    supervisorRun: options.supervisorRun,
  });
  const deployments = new DeploymentManager(runtime, {
    loadModule: registry.deployer.loadModule,
    cells,
  });
  registry.deployer.attach(deployments);
  // a tenant that costs the others too much in-process (isolation = "auto"; the rules:
  // WorkerPoolOptions.onNeedsCell) gets a cell of its own: its respawns, its memory and its
  // bytes then weigh on that process, not on the one every other tenant's requests go through
  runtime.onNeedsCell = (tenant, move) =>
    deployments.isolate(tenant, move).then((moved) => {
      if (moved) {
        logger.log({
          level: "warn",
          msg: `tenant "${tenant}" moved into a cell of its own: ${move.why}; ` +
            `it runs there until its next deploy or until Worky is started again`,
          tenant,
        });
      }
      return moved;
    }, (err) => {
      logger.log({
        level: "error",
        msg: `could not move tenant "${tenant}" into a cell (${move.why}): ${
          (err as Error).message
        }`,
        tenant,
      });
      return false;
    });
  /** Stops what started, in order; a failed start and `close()` both end here. */
  const closeAll = async () => {
    await scheduler.close();
    await deployments.close();
    await durableObjects.close();
    runtime.close();
    db.close();
    await stopBundler();
  };
  try {
    await deployments.deployAll(config.tenants);
    const lookup = (name: string) => {
      const slot = deployments.get(name);
      return slot && {
        event: (kind: string, payload: unknown, requestId: string) =>
          onCurrent(slot, (d) => d.event(kind, payload, requestId)),
      };
    };
    await scheduler.start(deployments.effectiveTenants(), lookup);
    // a deploy or rollback can bring an artifact with other cron triggers
    deployments.onCronChange(() => {
      scheduler.cron.configure(deployments.effectiveTenants(), lookup).catch((err) =>
        logger.log({ level: "error", msg: `cron reconfigure failed: ${err?.message ?? err}` })
      );
    });
  } catch (err) {
    await closeAll();
    throw err;
  }

  const startedAt = Date.now();
  const admin = new Hono().basePath("/_worky").route("/", healthRoutes(deployments, startedAt))
    .route("/", registry.routes);
  admin.notFound((c) =>
    errorResponse(
      { code: "ERR_NOT_FOUND", message: `no admin route ${c.req.method} ${c.req.path}` },
      newRequestId(),
    )
  );
  /** An error nothing else answered: logged with its stack, answered as JSON with an id. */
  const internalError = (err: unknown) => {
    const id = newRequestId();
    logger.log({ level: "error", msg: String((err as Error)?.stack ?? err), requestId: id });
    return errorResponse(err, id);
  };
  admin.onError(internalError);
  const ingress = createIngress(deployments, logger, createTenantGuard({ clock }));
  const devScheduled = options.watch ? devScheduledRoute(scheduler.cron, deployments) : undefined;
  const handler = (
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Response | Promise<Response> => {
    const { host, path } = splitUrl(request.url);
    if (path.startsWith("/_worky/")) return admin.fetch(request);
    if (devScheduled && path.startsWith(DEV_SCHEDULED_PATH)) return devScheduled(request);
    return ingress(request, host, path, info);
  };

  const hostname = options.hostname ?? config.server.hostname;
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname,
    port: options.port ?? config.server.port,
    reusePort: options.reusePort,
    onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
    onError: internalError,
  }, handler);
  const addr = await listening.promise;
  // no tenant may dial this port on any local address, whatever its egress config
  const unprotectPort = protectControlPlanePort(addr.port);
  cells.setControlPlanePort(addr.port);
  const url = `http://${
    addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
  }:${addr.port}`;
  logger.log({ level: "info", msg: `worky listening on ${url}`, tenants: config.tenants.length });

  const watcher = options.watch ? new SourceWatcher(deployments, logger) : undefined;
  watcher?.start();

  let closing: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    deployments,
    db,
    runtime,
    scheduler,
    registry,
    durableObjects,
    fetch: async (request) => await handler(request),
    close() {
      closing ??= (async () => {
        watcher?.stop();
        await server.shutdown();
        unprotectPort();
        await closeAll();
      })();
      return closing;
    },
  };
}
