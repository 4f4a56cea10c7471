/**
 * A cell's state services: the control plane's libSQL database (KV, queue producers) and the
 * tenant's Durable Objects. `cell_main.ts` imports this module only for a tenant that has a
 * binding, since loading libSQL is most of what a cell's start costs: measured on 2 cores, a
 * cell serving a tenant without bindings started (and answered once) in 140–190 ms of CPU and
 * 86 MB of RSS with it, 90–150 ms and 70 MB without. A crash-looping or memory-killed
 * cell pays its start again on every restart, on the machine it shares with good tenants.
 *
 * @module
 */
import { openDatabase } from "../../control-plane/storage/database.ts";
import { LibsqlKvStore } from "../../control-plane/storage/kv_store.ts";
import { TimerService } from "../../control-plane/scheduler/timer_service.ts";
import { QueueService } from "../../control-plane/queues/queue_service.ts";
import {
  type DurableObjectsService,
  startDurableObjects,
} from "../../control-plane/durable_objects/service.ts";
import { systemClock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import type { BindingServices } from "../bindings/types.ts";
import type { CellInit } from "./cell_protocol.ts";

/** What {@linkcode openCellStorage} opened. */
export interface CellStorage {
  /** For the cell's runtime (`RuntimeOptions.services`), secrets aside. */
  services: BindingServices;
  /** The tenant's Durable Objects, when it has a `durable_object` binding. */
  durableObjects?: DurableObjectsService;
  /** Evicts the objects (releasing their leases) and closes the database. */
  close(): Promise<void>;
}

/**
 * Opens the database of `init` and the services its tenant's bindings use.
 *
 * @example
 * ```ts ignore
 * const storage = await openCellStorage(init, logger);
 * const runtime = new Runtime({ logger, services: { ...storage.services, secrets } });
 * ```
 */
export async function openCellStorage(init: CellInit, logger: Logger): Promise<CellStorage> {
  const database = await openDatabase(init.dbUrl, { migrate: false });
  const timers = new TimerService({ client: database.client, clock: systemClock }); // never started
  // this tenant's Durable Objects live here: leases in the shared database (one owner for the
  // cell across its restarts), object files under the data dir; it waits for a lease the process
  // its tenant just left still holds (that one releases it as it drains)
  const durableObjects = init.spec.bindings.some((b) => b.kind === "durable_object")
    ? startDurableObjects({
      ...init.durableObjects,
      db: database.db,
      dataDir: init.dataDir,
      timers,
      clock: systemClock,
      logger,
      owner: init.objectOwner,
      waitForLeases: "any",
    })
    : undefined;
  return {
    services: {
      kv: new LibsqlKvStore(database),
      queues: new QueueService({ client: database.client, timers, clock: systemClock, logger }),
      durableObjects: durableObjects?.directory,
    },
    durableObjects,
    async close() {
      await durableObjects?.close().catch(() => {});
      database.close();
    },
  };
}
