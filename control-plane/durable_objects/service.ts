/**
 * Wires Durable Objects for a server: the libSQL backend (object files under
 * `<dataDir>/do/`, leases and alarms in the control-plane database), the
 * process-wide directory of live objects, the alarm scheduler, and the
 * idle-eviction tick.
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { WorkyDb } from "../storage/database.ts";
import { DurableObjectDirectory } from "../../runtime/durable_objects/directory.ts";
import { LibsqlObjectBackend } from "./libsql_backend.ts";
import { AlarmScheduler } from "./alarm_scheduler.ts";

/** Options of {@link startDurableObjects}. */
export interface DurableObjectsOptions {
  /** Idle time after which an object leaves memory, ms. Default 60 000. */
  idleMs?: number;
  /** Lease length, ms. Default 30 000. */
  leaseMs?: number;
  /** Real-time period of the alarm and eviction ticks, ms (0: no ticks; tests call them). */
  tickMs?: number;
}

/** The running Durable Objects service of one server. */
export interface DurableObjectsService {
  readonly directory: DurableObjectDirectory;
  readonly backend: LibsqlObjectBackend;
  readonly alarms: AlarmScheduler;
  close(): Promise<void>;
}

/**
 * Starts the service.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { startDurableObjects } from "./service.ts";
 * const dir = await Deno.makeTempDir();
 * const database = await openDatabase(`file:${dir}/worky.db`);
 * const dos = startDurableObjects({ db: database.db, dataDir: dir, clock: { now: Date.now } });
 * await dos.close();
 * database.close();
 * ```
 */
export function startDurableObjects(
  options: DurableObjectsOptions & {
    db: WorkyDb;
    dataDir: string;
    clock: Clock;
    logger?: Logger;
  },
): DurableObjectsService {
  const leaseMs = options.leaseMs ?? 30_000;
  const backend = new LibsqlObjectBackend({
    db: options.db,
    dir: join(options.dataDir, "do"),
    leaseMs,
  });
  const directory = new DurableObjectDirectory({
    backend,
    clock: options.clock,
    logger: options.logger,
    idleMs: options.idleMs,
    leaseMs,
  });
  const alarms = new AlarmScheduler({
    backend,
    directory,
    clock: options.clock,
    logger: options.logger,
  });
  const tickMs = options.tickMs ?? 500;
  let evictTimer: ReturnType<typeof setInterval> | undefined;
  if (tickMs > 0) {
    alarms.start(tickMs);
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
      await alarms.stop();
      await directory.close();
    },
  };
}
