/**
 * Wires Durable Objects for a server: the libSQL backend (object files under
 * `<dataDir>/do/`, leases in the control-plane database), the process-wide
 * directory of live objects, alarms as `do-alarm` timers of the server's one
 * timer service (the scheduler's; it fires them once it is started), and the
 * idle-eviction tick.
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { WorkyDb } from "../storage/database.ts";
import type { TimerService } from "../scheduler/timer_service.ts";
import { DurableObjectDirectory } from "../../runtime/durable_objects/directory.ts";
import { LibsqlObjectBackend } from "./libsql_backend.ts";
import { type AlarmTarget, DurableObjectAlarms } from "./alarms.ts";
import type { ObjectAddress } from "../../runtime/durable_objects/backend.ts";

/** Options of {@link startDurableObjects}. */
export interface DurableObjectsOptions {
  /** Idle time after which an object leaves memory, ms. Default 60 000. */
  idleMs?: number;
  /** Lease length, ms. Default 30 000. */
  leaseMs?: number;
  /** Real-time period of the eviction tick, ms (0: no tick; tests call `evictIdle()`). */
  tickMs?: number;
}

/** How the lease owners of the cells a control plane (lease owner `owner`) starts begin. */
export function cellOwnerPrefix(owner: string): string {
  return `${owner}/cell:`;
}

/** Where due alarms of objects go instead of this process's directory (a tenant in a cell). */
export type AlarmRoute = (address: ObjectAddress) => AlarmTarget | undefined;

/** The running Durable Objects service of one server. */
export interface DurableObjectsService {
  readonly directory: DurableObjectDirectory;
  readonly backend: LibsqlObjectBackend;
  /** Alarms on the timer service (`runDue()` fires them in tests). */
  readonly alarms: DurableObjectAlarms;
  close(): Promise<void>;
}

/**
 * Starts the service.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { TimerService } from "../scheduler/timer_service.ts";
 * import { startDurableObjects } from "./service.ts";
 * const dir = await Deno.makeTempDir();
 * const database = await openDatabase(`file:${dir}/worky.db`);
 * const timers = new TimerService({ client: database.client });
 * const dos = startDurableObjects({ db: database.db, dataDir: dir, timers });
 * timers.start(); // alarms fire on time from here on
 * await timers.close();
 * await dos.close();
 * database.close();
 * ```
 */
export function startDurableObjects(
  options: DurableObjectsOptions & {
    db: WorkyDb;
    dataDir: string;
    /** The server's one timer service; alarms are its `do-alarm` timers. */
    timers: TimerService;
    /** Default: the timer service's clock. */
    clock?: Clock;
    logger?: Logger;
    /** Lease owner (default: one per process); a cell keeps one across its restarts. */
    owner?: string;
    /**
     * Whose lease placing an object waits for, up to 10 s (`DirectoryOptions.conflictWaitMs`):
     * `"any"` holder (a cell: the process its tenant just left releases its objects as it
     * drains), or only this service's `"cells"` (owners under {@link cellOwnerPrefix}: a tenant
     * back in-process from a draining cell). Default none: an immediate `ERR_CONFLICT`.
     */
    waitForLeases?: "any" | "cells";
    /** Due alarms of tenants served elsewhere (cells); the rest fire in this directory. */
    routeAlarm?: AlarmRoute;
  },
): DurableObjectsService {
  const leaseMs = options.leaseMs ?? 30_000;
  const alarms = new DurableObjectAlarms({ timers: options.timers, logger: options.logger });
  const backend = new LibsqlObjectBackend({
    db: options.db,
    dir: join(options.dataDir, "do"),
    leaseMs,
    alarms,
    owner: options.owner,
  });
  const directory = new DurableObjectDirectory({
    backend,
    clock: options.clock ?? options.timers.clock,
    logger: options.logger,
    idleMs: options.idleMs,
    leaseMs,
    conflictWaitMs: options.waitForLeases ? 10_000 : 0,
    waitsFor: options.waitForLeases === "cells"
      ? (holder) => holder.startsWith(cellOwnerPrefix(backend.owner))
      : undefined,
  });
  const route = options.routeAlarm;
  alarms.listen(
    route
      ? {
        fireAlarm: (address, retryCount) =>
          (route(address) ?? directory).fireAlarm(address, retryCount),
      }
      : directory,
  );
  const tickMs = options.tickMs ?? 500;
  let evictTimer: ReturnType<typeof setInterval> | undefined;
  if (tickMs > 0) {
    const timer = setInterval(() => directory.evictIdle().catch(() => {}), Math.max(tickMs, 1000));
    Deno.unrefTimer(timer);
    evictTimer = timer;
  }
  return {
    directory,
    backend,
    alarms,
    async close() {
      clearInterval(evictTimer);
      await directory.close();
    },
  };
}
