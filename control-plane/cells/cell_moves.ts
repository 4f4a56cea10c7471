/**
 * Moves into cells that outlive a server process, but only under the supervisor that made them.
 *
 * Under `isolation = "auto"` a tenant that costs the others too much in-process is moved into a
 * cell (`WorkerPoolOptions.onNeedsCell`) until its next deploy or until the operator restarts
 * Worky. A supervised server can also be replaced without anyone asking: a zombie worker thread
 * or a runaway allocation makes it ask its supervisor for a graceful replacement
 * (`cli/supervisor.ts`), and a crash restarts it. Before this record, the replacement started
 * every moved tenant in-process again, and the next burst of bad traffic paid for each move a
 * second time (a cell start, and the tenant's failures on the host thread until then).
 *
 * `<dataDir>/cell_moves.json` holds the tenants moved by the processes of one supervisor run
 * (`run`, the id the supervisor hands its children in `WORKY_SUPERVISED`). A process of the same
 * run starts them in cells; a new run (the operator started Worky again) ignores and replaces the
 * file. An unsupervised server neither reads nor writes it. A deploy of the tenant forgets its
 * move. Writes replace the file atomically and are serialized within a process.
 *
 * ```json
 * { "version": 1, "run": "1b4e…", "tenants": { "huge": { "why": "…", "misbehaved": false, "at": "…" } } }
 * ```
 *
 * @module
 */
import { readTenantRecord, writeTenantRecord } from "../../runtime/tenant_record.ts";

/** One moved tenant. */
export interface CellMoveEntry {
  /** Why it was moved, in words. */
  why: string;
  /** It misbehaved (its cell runs at SCHED_IDLE) rather than only weighing on the host. */
  misbehaved: boolean;
  /** ISO 8601 time of the move. */
  at: string;
}

/** File name inside the data dir. */
export const CELL_MOVES_FILE = "cell_moves.json";

/**
 * The moves of one supervisor run, kept in `<dataDir>/cell_moves.json`.
 *
 * @example
 * ```ts ignore
 * const moves = new CellMoves(".worky", Deno.env.get("WORKY_SUPERVISED"));
 * await moves.record("huge", { why: "big bodies", misbehaved: false });
 * (await moves.read())["huge"]; // → { why: "big bodies", misbehaved: false, at: "…" }
 * ```
 */
export class CellMoves {
  readonly #path: string;
  readonly #run: string | undefined;
  #writes: Promise<unknown> = Promise.resolve();

  /** `run`: the supervisor run id; undefined (not supervised) makes every method a no-op. */
  constructor(dataDir: string, run: string | undefined) {
    this.#path = `${dataDir.replace(/\/+$/, "")}/${CELL_MOVES_FILE}`;
    this.#run = run || undefined;
  }

  /**
   * The tenants this supervisor run moved; `{}` for another run, no file or no run. Throws
   * `ERR_CONFIG_INVALID` naming the file when it is not a record of moves.
   */
  async read(): Promise<Record<string, CellMoveEntry>> {
    if (!this.#run) return {};
    const record = await readTenantRecord(
      this.#path,
      (e) => {
        const m = e as Partial<CellMoveEntry> | null;
        return typeof m?.why === "string" && typeof m.misbehaved === "boolean" &&
            typeof m.at === "string"
          ? { why: m.why, misbehaved: m.misbehaved, at: m.at }
          : undefined;
      },
      "{ why: string, misbehaved: boolean, at: ISO time }",
      `{ "run": string, "tenants": { … } }`,
    );
    return record?.fields.run === this.#run ? record.tenants : {};
  }

  /** Records that `tenant` now runs in a cell. */
  record(
    tenant: string,
    move: { why: string; misbehaved: boolean },
    now: Date = new Date(),
  ): Promise<void> {
    return this.#update((t) => {
      t[tenant] = { why: move.why, misbehaved: move.misbehaved, at: now.toISOString() };
    });
  }

  /**
   * Marks `tenant`'s move as misbehaved (its cell went to SCHED_IDLE for `why`), so the next
   * process of this run starts its cell there too; no-op when it was not moved, or is marked.
   */
  misbehaved(tenant: string, why: string): Promise<void> {
    return this.#update((t) => {
      const m = t[tenant];
      if (m && !m.misbehaved) {
        t[tenant] = { ...m, why: `${m.why}; then in its cell: ${why}`, misbehaved: true };
      }
    });
  }

  /** Forgets `tenant`'s move (it was deployed again). */
  forget(tenant: string): Promise<void> {
    return this.#update((t) => {
      delete t[tenant];
    });
  }

  #update(change: (tenants: Record<string, CellMoveEntry>) => void): Promise<void> {
    const run = this.#run;
    if (!run) return Promise.resolve();
    const next = this.#writes.then(async () => {
      // an unreadable file is replaced: it only ever speeds up a restart
      const tenants = await this.read().catch(() => ({}));
      const before = JSON.stringify(tenants);
      change(tenants);
      if (JSON.stringify(tenants) === before) return;
      await writeTenantRecord(this.#path, { run }, tenants);
    });
    this.#writes = next.catch(() => {});
    return next;
  }
}
