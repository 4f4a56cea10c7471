/**
 * A small JSON record of tenants in the data dir (`{ "version": 1, …, "tenants": { name: entry } }`),
 * read with every entry checked and replaced atomically: the quarantine record
 * (`memory/quarantine.ts`) and the record of moves into cells (`control-plane/cells/cell_moves.ts`).
 *
 * @module
 */
import { WorkyError } from "./errors.ts";
import { writeFileAtomic } from "./atomic_file.ts";

/** A record as read: its other top-level fields and its checked entries. */
export interface TenantRecord<E> {
  fields: Record<string, unknown>;
  tenants: Record<string, E>;
}

/**
 * Reads the record at `path`; undefined when there is none. `entry` returns the checked entry,
 * or undefined when it is malformed; `entryShape` and `shape` describe what is expected in the
 * error, which names the file (`ERR_CONFIG_INVALID`; `ERR_STORAGE` when it can't be read).
 *
 * @example
 * ```ts ignore
 * const r = await readTenantRecord(path, (e) => typeof e === "string" ? e : undefined,
 *   "a string", `{ "tenants": { … } }`);
 * ```
 */
export async function readTenantRecord<E>(
  path: string,
  entry: (value: unknown) => E | undefined,
  entryShape: string,
  shape = `{ "tenants": { … } }`,
): Promise<TenantRecord<E> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new WorkyError("ERR_STORAGE", `cannot read ${path}: ${(err as Error).message}`);
  }
  const bad = (what: string) => new WorkyError("ERR_CONFIG_INVALID", `${path}: ${what}`);
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  const { tenants, ...fields } = data ?? {};
  if (typeof tenants !== "object" || tenants === null || Array.isArray(tenants)) {
    throw bad(`expected ${shape}`);
  }
  const out: Record<string, E> = {};
  for (const [name, value] of Object.entries(tenants)) {
    const checked = entry(value);
    if (checked === undefined) throw bad(`tenants.${name} must be ${entryShape}`);
    out[name] = checked;
  }
  return { fields, tenants: out };
}

/** Replaces the record at `path` (version 1, `fields`, then `tenants`) atomically. */
export function writeTenantRecord(
  path: string,
  fields: Record<string, unknown>,
  tenants: Record<string, unknown>,
): Promise<void> {
  return writeFileAtomic(
    path,
    JSON.stringify({ version: 1, ...fields, tenants }, null, 2) + "\n",
  );
}
