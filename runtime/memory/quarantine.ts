/**
 * The quarantine record: tenants whose worker Worky could not stop (a "zombie" thread that kept
 * burning CPU after `terminate()`, see `zombie_threads.ts`), kept in `<dataDir>/quarantine.json`
 * so the next start (and the cells engine, which gives such tenants a process of their own)
 * knows about them.
 *
 * File format (stable; read by `runtime/cells/`):
 *
 * ```json
 * {
 *   "version": 1,
 *   "tenants": {
 *     "loop": { "reason": "zombie thread worker-7 …", "at": "2025-01-01T00:00:00.000Z", "count": 2 }
 *   }
 * }
 * ```
 *
 * `at` is the ISO time of the latest record, `count` how many times the tenant was recorded.
 * Writes replace the file atomically (temporary file + rename), so a reader never sees half a
 * file. Writes within one process are serialized; two processes writing at the same instant
 * (the old and the new server during a graceful handoff) can lose one increment of `count`,
 * never the file.
 */
import { WorkyError } from "../errors.ts";
import { readTenantRecord, writeTenantRecord } from "../tenant_record.ts";

/** One quarantined tenant. */
export interface QuarantineEntry {
  /** Why, in words (names the zombie thread and what it did). */
  reason: string;
  /** ISO 8601 time of the latest record. */
  at: string;
  /** Records so far (1 after the first). */
  count: number;
}

/** Tenant name → its entry. */
export type Quarantine = Record<string, QuarantineEntry>;

/** File name inside the data dir. */
export const QUARANTINE_FILE = "quarantine.json";

/** `<dataDir>/quarantine.json`. */
export function quarantinePath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/${QUARANTINE_FILE}`;
}

/**
 * Reads the quarantine record; `{}` when there is none yet.
 * Throws `ERR_CONFIG_INVALID` naming the file when it exists but is not a quarantine record.
 *
 * @example
 * ```ts ignore
 * const q = await readQuarantine(".worky");
 * if (q["loop"]) console.log(`loop was quarantined ${q["loop"].count}×: ${q["loop"].reason}`);
 * ```
 */
export async function readQuarantine(dataDir: string): Promise<Quarantine> {
  const record = await readTenantRecord(
    quarantinePath(dataDir),
    (e) => {
      const entry = e as Partial<QuarantineEntry> | null;
      return typeof entry?.reason === "string" && typeof entry.at === "string" &&
          typeof entry.count === "number" && Number.isInteger(entry.count) && entry.count >= 1
        ? { reason: entry.reason, at: entry.at, count: entry.count }
        : undefined;
    },
    "{ reason: string, at: ISO time, count: integer ≥ 1 }",
  );
  return record?.tenants ?? {};
}

let writes: Promise<unknown> = Promise.resolve();

/**
 * Records (or re-records: `count` + 1) a tenant in `<dataDir>/quarantine.json`; returns its
 * entry. A corrupt existing file is kept as `quarantine.json.corrupt-<ms>` rather than
 * overwritten.
 *
 * @example
 * ```ts ignore
 * await recordQuarantine(".worky", "loop", "zombie thread worker-7 at 99% CPU after terminate()");
 * ```
 */
export function recordQuarantine(
  dataDir: string,
  tenant: string,
  reason: string,
  now: Date = new Date(),
): Promise<QuarantineEntry> {
  const next = writes.then(() => write(dataDir, tenant, reason, now));
  writes = next.catch(() => {});
  return next;
}

async function write(dataDir: string, tenant: string, reason: string, now: Date) {
  if (!tenant) throw new WorkyError("ERR_BAD_REQUEST", "recordQuarantine: tenant name is empty");
  const path = quarantinePath(dataDir);
  await Deno.mkdir(dataDir, { recursive: true });
  let current: Quarantine;
  try {
    current = await readQuarantine(dataDir);
  } catch (err) {
    if (!(err instanceof WorkyError) || err.code !== "ERR_CONFIG_INVALID") throw err;
    await Deno.rename(path, `${path}.corrupt-${now.getTime()}`); // keep it, never overwrite
    current = {};
  }
  const entry: QuarantineEntry = {
    reason,
    at: now.toISOString(),
    count: (current[tenant]?.count ?? 0) + 1,
  };
  current[tenant] = entry;
  await writeTenantRecord(path, {}, current);
  return entry;
}
