/**
 * Persistence of Durable Objects on libSQL: each object's store is its own
 * file under `<dataDir>/do/`, while leases are rows of the control-plane
 * database (`schema_durable_objects.ts`), so several Worky processes sharing
 * that database agree on where each object lives. Alarms are timers of the
 * shared timer service (`alarms.ts`, table `timers`).
 *
 * Leases: a process takes the row of an object when it has none, holds it
 * already, or the holder let it expire (died). Another live holder is an
 * `ERR_CONFLICT` error naming the object: Worky does not forward calls
 * between processes; route an object's callers to one process.
 *
 * @module
 */
import { join } from "node:path";
import { and, eq, sql } from "drizzle-orm";
import { WorkyError } from "../../runtime/errors.ts";
import type { WorkyDb } from "../storage/database.ts";
import { durableObjectLeases } from "../storage/schema_durable_objects.ts";
import {
  type ObjectAddress,
  type ObjectBackend,
  objectKey,
} from "../../runtime/durable_objects/backend.ts";
import { LibsqlObjectStore } from "./object_store.ts";
import type { DurableObjectAlarms } from "./alarms.ts";

/** Options of {@link LibsqlObjectBackend}. */
export interface LibsqlObjectBackendOptions {
  db: WorkyDb;
  /** Folder of the object files (`<dataDir>/do`). */
  dir: string;
  /** Lease length, ms. */
  leaseMs: number;
  /** This process's id in lease rows (default: random). */
  owner?: string;
  /** Where alarms live (the shared timer service). */
  alarms: DurableObjectAlarms;
}

/**
 * The libSQL implementation of {@link ObjectBackend}.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { TimerService } from "../scheduler/timer_service.ts";
 * import { DurableObjectAlarms } from "./alarms.ts";
 * import { LibsqlObjectBackend } from "./libsql_backend.ts";
 * const dir = await Deno.makeTempDir();
 * const database = await openDatabase(`file:${dir}/worky.db`);
 * const alarms = new DurableObjectAlarms({ timers: new TimerService({ client: database.client }) });
 * const backend = new LibsqlObjectBackend({
 *   db: database.db,
 *   dir: `${dir}/do`,
 *   leaseMs: 30_000,
 *   alarms,
 * });
 * const address = { tenant: "t", className: "Counter", id: "a".repeat(64) };
 * await backend.acquireLease(address, Date.now());
 * const store = await backend.open(address);
 * await backend.setAlarm(address, Date.now() + 60_000);
 * await store.close();
 * database.close();
 * ```
 */
export class LibsqlObjectBackend implements ObjectBackend {
  readonly owner: string;
  readonly #db: WorkyDb;
  readonly #dir: string;
  readonly #leaseMs: number;
  readonly #alarms: DurableObjectAlarms;

  constructor(options: LibsqlObjectBackendOptions) {
    this.#db = options.db;
    this.#alarms = options.alarms;
    this.#dir = options.dir;
    this.#leaseMs = options.leaseMs;
    this.owner = options.owner ??
      `${Deno.hostname?.() ?? "host"}:${Deno.pid}:${crypto.randomUUID()}`;
  }

  /** The file of an object. */
  pathOf(a: ObjectAddress): string {
    return join(this.#dir, a.tenant, a.className, `${a.id}.db`);
  }

  open(address: ObjectAddress): Promise<LibsqlObjectStore> {
    return LibsqlObjectStore.open(this.pathOf(address));
  }

  async acquireLease(address: ObjectAddress, now: number): Promise<void> {
    const key = objectKey(address);
    const expiresAt = now + this.#leaseMs;
    let holder: typeof durableObjectLeases.$inferSelect | undefined;
    // A holder may release the lease between the two statements (a cell draining as its tenant
    // comes back in-process): then nobody holds it, and the insert is tried again.
    for (let attempt = 0; attempt < 3 && !holder; attempt++) {
      const taken = await this.#db.insert(durableObjectLeases)
        .values({ objectKey: key, owner: this.owner, expiresAt })
        .onConflictDoUpdate({
          target: durableObjectLeases.objectKey,
          set: { owner: this.owner, expiresAt },
          setWhere:
            sql`${durableObjectLeases.owner} = ${this.owner} OR ${durableObjectLeases.expiresAt} < ${now}`,
        })
        .returning({ owner: durableObjectLeases.owner });
      if (taken.length === 1 && taken[0].owner === this.owner) return;
      [holder] = await this.#db.select().from(durableObjectLeases)
        .where(eq(durableObjectLeases.objectKey, key));
    }
    const err = new WorkyError(
      "ERR_CONFLICT",
      `Durable Object ${address.className} ${address.id} (tenant "${address.tenant}") is live in ` +
        `another Worky process (${holder?.owner ?? "unknown"}) until at least ` +
        `${new Date(holder?.expiresAt ?? now).toISOString()}; send its calls to that process`,
    );
    throw Object.assign(err, { holder: holder?.owner ?? "" });
  }

  async releaseLease(address: ObjectAddress): Promise<void> {
    await this.#db.delete(durableObjectLeases).where(and(
      eq(durableObjectLeases.objectKey, objectKey(address)),
      eq(durableObjectLeases.owner, this.owner),
    ));
  }

  async renewLeases(now: number): Promise<Set<string>> {
    await this.#db.update(durableObjectLeases).set({ expiresAt: now + this.#leaseMs })
      .where(eq(durableObjectLeases.owner, this.owner));
    const rows = await this.#db.select({ key: durableObjectLeases.objectKey })
      .from(durableObjectLeases).where(eq(durableObjectLeases.owner, this.owner));
    return new Set(rows.map((r) => r.key));
  }

  getAlarm(address: ObjectAddress): Promise<number | null> {
    return this.#alarms.get(address);
  }

  setAlarm(address: ObjectAddress, time: number): Promise<void> {
    return this.#alarms.set(address, time);
  }

  deleteAlarm(address: ObjectAddress): Promise<void> {
    return this.#alarms.delete(address);
  }
}
