/**
 * What the Durable Object runtime needs from persistence, implemented by the
 * control plane (`control-plane/durable_objects/`) on libSQL: each object's
 * own store, the lease that makes an object live in one process only, and
 * its alarm.
 *
 * @module
 */
import type {
  WireListOptions,
  WireSqlResult,
  WireWrite,
} from "../bindings/durable_object/types.ts";

/** Where an object lives: `<tenant>/<class>/<id>`. */
export interface ObjectAddress {
  tenant: string;
  className: string;
  id: string;
}

/** The key of an object in maps, leases and alarms. */
export function objectKey(a: ObjectAddress): string {
  return `${a.tenant}/${a.className}/${a.id}`;
}

/** One object's storage. Operations run in call order; a write resolves once committed. */
export interface ObjectStore {
  get(keys: string[]): Promise<(Uint8Array | null)[]>;
  /** Puts (value bytes) and deletes (null) in one atomic commit. */
  write(writes: WireWrite[]): Promise<void>;
  /** Deletes keys; resolves with how many existed. */
  delete(keys: string[]): Promise<number>;
  list(options: WireListOptions): Promise<[string, Uint8Array][]>;
  deleteAll(): Promise<void>;
  sql(query: string, bindings: unknown[]): Promise<WireSqlResult>;
  close(): Promise<void>;
}

/** Persistence of Durable Objects. */
export interface ObjectBackend {
  /** Opens (creating if needed) an object's store. */
  open(address: ObjectAddress): Promise<ObjectStore>;
  /**
   * Takes or renews this process's lease on an object; throws a `WorkyError`
   * `ERR_CONFLICT` when another live process holds it.
   */
  acquireLease(address: ObjectAddress, now: number): Promise<void>;
  releaseLease(address: ObjectAddress): Promise<void>;
  /** Extends every lease of this process; resolves with the object keys still held. */
  renewLeases(now: number): Promise<Set<string>>;
  /** Alarms: the control plane keeps them as timers of its timer service (kind `do-alarm`). */
  getAlarm(address: ObjectAddress): Promise<number | null>;
  setAlarm(address: ObjectAddress, time: number): Promise<void>;
  deleteAlarm(address: ObjectAddress): Promise<void>;
}
