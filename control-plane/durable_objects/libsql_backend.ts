/**
 * Persistence of Durable Objects on libSQL: each object's store is its own
 * file under `<dataDir>/do/`, while leases and alarms are rows of the
 * control-plane database (`schema_durable_objects.ts`), so several Worky
 * processes sharing that database agree on where each object lives.
 *
 * Leases: a process takes the row of an object when it has none, holds it
 * already, or the holder let it expire (died). Another live holder is an
 * `ERR_CONFLICT` error naming the object: Worky does not forward calls
 * between processes; route an object's callers to one process.
 *
 * @module
 */
import { join } from "node:path";
import { and, eq, lt, sql } from "drizzle-orm";
import { WorkyError } from "../../runtime/errors.ts";
import type { WorkyDb } from "../storage/database.ts";
import { durableObjectAlarms, durableObjectLeases } from "../storage/schema_durable_objects.ts";
import {
  type DueAlarm,
  type ObjectAddress,
  type ObjectBackend,
  objectKey,
} from "../../runtime/durable_objects/backend.ts";
import { LibsqlObjectStore } from "./object_store.ts";

/** Options of {@link LibsqlObjectBackend}. */
export interface LibsqlObjectBackendOptions {
  db: WorkyDb;
  /** Folder of the object files (`<dataDir>/do`). */
  dir: string;
  /** Lease length, ms. */
  leaseMs: number;
  /** This process's id in lease rows (default: random). */
  owner?: string;
}

/**
 * The libSQL implementation of {@link ObjectBackend}.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { LibsqlObjectBackend } from "./libsql_backend.ts";
 * const dir = await Deno.makeTempDir();
 * const database = await openDatabase(`file:${dir}/worky.db`);
 * const backend = new LibsqlObjectBackend({ db: database.db, dir: `${dir}/do`, leaseMs: 30_000 });
 * const address = { tenant: "t", className: "Counter", id: "a".repeat(64) };
 * await backend.acquireLease(address, Date.now());
 * const store = await backend.open(address);
 * await store.close();
 * database.close();
 * ```
 */
export class LibsqlObjectBackend implements ObjectBackend {
  readonly owner: string;
  readonly #db: WorkyDb;
  readonly #dir: string;
  readonly #leaseMs: number;

  constructor(options: LibsqlObjectBackendOptions) {
    this.#db = options.db;
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
    const [holder] = await this.#db.select().from(durableObjectLeases)
      .where(eq(durableObjectLeases.objectKey, key));
    throw new WorkyError(
      "ERR_CONFLICT",
      `Durable Object ${address.className} ${address.id} (tenant "${address.tenant}") is live in ` +
        `another Worky process (${holder?.owner ?? "unknown"}) until at least ` +
        `${new Date(holder?.expiresAt ?? now).toISOString()}; send its calls to that process`,
    );
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

  async getAlarm(address: ObjectAddress): Promise<number | null> {
    const [row] = await this.#db.select({ at: durableObjectAlarms.scheduledAt })
      .from(durableObjectAlarms).where(eq(durableObjectAlarms.objectKey, objectKey(address)));
    return row?.at ?? null;
  }

  async setAlarm(address: ObjectAddress, time: number): Promise<void> {
    const row = {
      objectKey: objectKey(address),
      tenant: address.tenant,
      className: address.className,
      objectId: address.id,
      dueAt: time,
      scheduledAt: time,
      retryCount: 0,
    };
    await this.#db.insert(durableObjectAlarms).values(row).onConflictDoUpdate({
      target: durableObjectAlarms.objectKey,
      set: { dueAt: time, scheduledAt: time, retryCount: 0 },
    });
  }

  async deleteAlarm(address: ObjectAddress): Promise<void> {
    await this.#db.delete(durableObjectAlarms)
      .where(eq(durableObjectAlarms.objectKey, objectKey(address)));
  }

  /** Alarms due at `now`, earliest first. */
  async dueAlarms(now: number, limit = 100): Promise<DueAlarm[]> {
    const rows = await this.#db.select().from(durableObjectAlarms)
      .where(lt(durableObjectAlarms.dueAt, now + 1)).orderBy(durableObjectAlarms.dueAt).limit(
        limit,
      );
    return rows.map((r) => ({
      tenant: r.tenant,
      className: r.className,
      id: r.objectId,
      dueAt: r.dueAt,
      retryCount: r.retryCount,
    }));
  }

  /** Removes a fired alarm, unless it was set again meanwhile (due time changed). */
  async completeAlarm(alarm: DueAlarm): Promise<void> {
    await this.#db.delete(durableObjectAlarms).where(and(
      eq(durableObjectAlarms.objectKey, objectKey(alarm)),
      eq(durableObjectAlarms.dueAt, alarm.dueAt),
    ));
  }

  /** Moves a failed alarm to its retry time, unless it was set again meanwhile. */
  async retryAlarm(alarm: DueAlarm, dueAt: number): Promise<void> {
    await this.#db.update(durableObjectAlarms)
      .set({ dueAt, retryCount: alarm.retryCount + 1 })
      .where(and(
        eq(durableObjectAlarms.objectKey, objectKey(alarm)),
        eq(durableObjectAlarms.dueAt, alarm.dueAt),
      ));
  }
}
