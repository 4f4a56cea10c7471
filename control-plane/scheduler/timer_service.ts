/**
 * The one timer service of Worky. Everything that must happen at a time (cron
 * ticks, delayed queue deliveries and retries, later Durable Object alarms and
 * workflow wake-ups) is a row of the `timers` table: `(kind, key)` → due time
 * and a JSON payload. A handler is registered per kind.
 *
 * - **On time, no minute polling.** The service sleeps exactly until the
 *   earliest due time it knows (re-armed at once when an earlier timer is
 *   scheduled), then claims and fires what is due. It also looks at the table
 *   every `refreshMs` (default 1 s), only to learn about timers other processes
 *   scheduled; timers this process schedules fire on their due time.
 * - **Leases.** Firing claims the row (`lease_owner`, `lease_until`) in one
 *   conditional UPDATE, so when several processes share the database each
 *   timer fires in exactly one of them. A holder that dies mid-handler loses
 *   the timer to another process when the lease runs out.
 * - **Injected clock.** Due times are read against `clock.now()`; tests move a
 *   `ManualClock` and call {@linkcode TimerService.runDue} instead of waiting.
 *
 * Handlers should be short (they hold the lease and the pass waits for them):
 * start long work and return, or register the kind `detached` (the pass
 * claims the timer and starts the handler without waiting; the lease is held
 * until the handler settles, and {@linkcode TimerService.idle} waits for it).
 * A handler returns the timer's next due time (it stays), `{ dueAt, payload }`
 * (it stays with a new payload), or nothing (it is deleted). If the timer was
 * re-scheduled while its handler ran, the re-schedule wins: a returned number
 * keeps the earlier of the two due times, a returned `{ dueAt, payload }` is
 * dropped, and nothing deletes it.
 *
 * @module
 */
import type { Client, InValue } from "@libsql/client";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";

/** A timer as its handler sees it. */
export interface Timer {
  kind: string;
  key: string;
  /** When it was due, ms since the epoch. */
  dueAt: number;
  payload: unknown;
}

/** A handler's result that keeps its timer with a new due time and payload. */
export interface TimerUpdate {
  dueAt: number;
  payload: unknown;
}

/** What a handler returns: a next due time or update keeps the timer, nothing deletes it. */
export type TimerResult = number | TimerUpdate | null | void;

/** Fires one timer; returns its next due time to keep it, or nothing to delete it. */
export type TimerHandler = (timer: Timer) => Promise<TimerResult> | TimerResult;

/** Options of {@linkcode TimerService.on}. */
export interface HandlerOptions {
  /** Whether this process handles the timer with this key (default: all keys). */
  accepts?(key: string): boolean;
  /**
   * Run the handler outside the pass (default false): for handlers that wait
   * on tenant code, so one slow handler does not hold back other timers.
   */
  detached?: boolean;
}

/** Options of {@linkcode TimerService}. */
export interface TimerServiceOptions {
  /** The libSQL client of Worky's database (with the `timers` table). */
  client: Client;
  clock?: Clock;
  /** This process's name in leases; default a random id. */
  owner?: string;
  /** How long a claimed timer stays leased to its handler, ms (default 30 000). */
  leaseMs?: number;
  /** How often the table is re-read for timers scheduled by other processes, ms (default 1000). */
  refreshMs?: number;
  logger?: Logger;
}

/** A row of the `timers` table, for listings. */
export interface TimerRow extends Timer {
  leaseOwner: string | null;
  leaseUntil: number | null;
}

/** setTimeout's longest delay. */
const MAX_DELAY = 2 ** 31 - 1;
/** Timers claimed per pass. */
const BATCH = 64;

/**
 * The timer service.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { ManualClock } from "../../runtime/clock.ts";
 * import { TimerService } from "./timer_service.ts";
 * const database = await openDatabase(":memory:");
 * const clock = new ManualClock(0);
 * const timers = new TimerService({ client: database.client, clock });
 * timers.on("hello", (t) => console.log("fired", t.key, t.payload));
 * await timers.schedule("hello", "a", 1_000, { n: 1 });
 * clock.advance(1_000);
 * await timers.runDue(); // fired a { n: 1 }
 * await timers.close();
 * database.close();
 * ```
 */
export class TimerService {
  readonly owner: string;
  readonly clock: Clock;
  readonly #client: Client;
  readonly #leaseMs: number;
  readonly #refreshMs: number;
  readonly #logger?: Logger;
  readonly #handlers = new Map<string, { fire: TimerHandler; options: HandlerOptions }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The due time the real timer is armed for. */
  #armedFor = Infinity;
  #started = false;
  #closed = false;
  /** Serializes passes: one `runDue` at a time per process. */
  #pass: Promise<number> = Promise.resolve(0);
  /** Ids of timers whose handler runs in this process (never claimed twice here). */
  readonly #inFlight = new Set<string>();
  /** Detached handlers still running. */
  readonly #detached = new Set<Promise<void>>();

  constructor(options: TimerServiceOptions) {
    this.#client = options.client;
    this.clock = options.clock ?? systemClock;
    this.owner = options.owner ?? `worky-${crypto.randomUUID().slice(0, 8)}`;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#refreshMs = options.refreshMs ?? 1_000;
    this.#logger = options.logger;
  }

  /** Registers the handler of one kind (one per kind). */
  on(kind: string, fire: TimerHandler, options: HandlerOptions = {}): void {
    this.#handlers.set(kind, { fire, options });
  }

  /**
   * Creates or replaces the timer `(kind, key)`. With `ifEarlier`, an existing
   * timer is only moved earlier (never later), except that a timer whose
   * handler is running takes the new time, so the handler's result cannot
   * drop it. With `ifAbsent`, an existing timer is left as it is.
   */
  async schedule(
    kind: string,
    key: string,
    dueAt: number,
    payload: unknown = null,
    options: { ifEarlier?: boolean; ifAbsent?: boolean } = {},
  ): Promise<void> {
    const json = payload === null || payload === undefined ? null : JSON.stringify(payload);
    const where = options.ifEarlier
      ? " WHERE excluded.due_at < timers.due_at OR timers.lease_owner IS NOT NULL"
      : "";
    const conflict = options.ifAbsent
      ? "DO NOTHING"
      : "DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload, " +
        `seq = timers.seq + 1${where}`;
    await this.#client.execute({
      sql: "INSERT INTO timers (id, kind, key, due_at, payload, seq) VALUES (?, ?, ?, ?, ?, 1) " +
        `ON CONFLICT(id) ${conflict}`,
      args: [timerId(kind, key), kind, key, Math.floor(dueAt), json],
    });
    this.#wake(dueAt);
  }

  /** Deletes the timer `(kind, key)`; true if there was one. */
  async cancel(kind: string, key: string): Promise<boolean> {
    const rs = await this.#client.execute({
      sql: "DELETE FROM timers WHERE id = ?",
      args: [timerId(kind, key)],
    });
    return rs.rowsAffected > 0;
  }

  /** The timer `(kind, key)`, or null. */
  async get(kind: string, key: string): Promise<TimerRow | null> {
    const rs = await this.#client.execute({
      sql: "SELECT kind, key, due_at, payload, lease_owner, lease_until FROM timers WHERE id = ?",
      args: [timerId(kind, key)],
    });
    return rs.rows.length ? toRow(rs.rows[0]) : null;
  }

  /** Every timer (of one kind), earliest first. */
  async list(kind?: string): Promise<TimerRow[]> {
    const rs = await this.#client.execute({
      sql: "SELECT kind, key, due_at, payload, lease_owner, lease_until FROM timers" +
        (kind === undefined ? "" : " WHERE kind = ?") + " ORDER BY due_at, id",
      args: kind === undefined ? [] : [kind],
    });
    return rs.rows.map(toRow);
  }

  /** Starts firing timers on time (real timers, against the clock). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#rearm();
  }

  /**
   * Fires every timer that is due now and not leased by a live holder, and
   * waits for their handlers. Passes are serialized, so an awaited call also
   * waits for a pass already running. Returns how many timers fired.
   */
  runDue(): Promise<number> {
    const pass = this.#pass.then(() => this.#runPass(), () => this.#runPass());
    this.#pass = pass.catch(() => 0);
    return pass;
  }

  /** Resolves when no detached handler of this process is running. */
  async idle(): Promise<void> {
    while (this.#detached.size) await Promise.all(this.#detached);
  }

  /** Stops arming and waits for the running pass and detached handlers. Timers stay in the database. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass;
    await this.idle();
  }

  async #runPass(): Promise<number> {
    if (this.#closed && this.#started) return 0;
    const kinds = [...this.#handlers.keys()];
    if (!kinds.length) return 0;
    const now = this.clock.now();
    const busy = [...this.#inFlight];
    const rs = await this.#client.execute({
      sql: `SELECT id, kind, key, seq FROM timers WHERE kind IN (${marks(kinds.length)}) ` +
        "AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)" +
        (busy.length ? ` AND id NOT IN (${marks(busy.length)})` : "") +
        " ORDER BY due_at LIMIT ?",
      args: [...kinds, now, now, ...busy, BATCH],
    });
    const fired = await Promise.all(rs.rows.map((row) => this.#fire(String(row.id), now)));
    const count = fired.filter(Boolean).length;
    // A full batch may have more behind it.
    if (rs.rows.length === BATCH) return count + await this.#runPass();
    return count;
  }

  /** Claims one timer and runs its handler; false if another holder got it. */
  async #fire(id: string, now: number): Promise<boolean> {
    const kind = id.slice(0, id.indexOf(":"));
    const key = id.slice(kind.length + 1);
    const handler = this.#handlers.get(kind);
    if (!handler || (handler.options.accepts && !handler.options.accepts(key))) return false;
    if (this.#inFlight.has(id)) return false;
    const claim = await this.#client.execute({
      sql: "UPDATE timers SET lease_owner = ?, lease_until = ? WHERE id = ? AND due_at <= ? " +
        "AND (lease_until IS NULL OR lease_until <= ?) RETURNING due_at, payload, seq",
      args: [this.owner, now + this.#leaseMs, id, now, now],
    });
    if (!claim.rows.length) return false;
    const row = claim.rows[0];
    const seq = Number(row.seq);
    const timer: Timer = {
      kind,
      key,
      dueAt: Number(row.due_at),
      payload: row.payload === null ? null : JSON.parse(String(row.payload)),
    };
    this.#inFlight.add(id);
    const run = this.#run(id, seq, timer, handler.fire, now)
      .finally(() => this.#inFlight.delete(id));
    if (!handler.options.detached) {
      await run;
      return true;
    }
    const tracked = run.catch((err) =>
      this.#logger?.log({
        level: "error",
        msg: `timer ${kind} ${JSON.stringify(key)} not released: ${(err as Error)?.stack ?? err}`,
      })
    );
    this.#detached.add(tracked);
    tracked.finally(() => this.#detached.delete(tracked));
    return true;
  }

  /** Runs a claimed timer's handler, then releases the lease and applies its result. */
  async #run(id: string, seq: number, timer: Timer, fire: TimerHandler, now: number) {
    let next: number | null = null;
    let payload: { json: string | null } | undefined;
    try {
      const result = await fire(timer);
      if (typeof result === "number") {
        next = Number.isFinite(result) ? Math.floor(result) : null;
      } else if (result && typeof result === "object" && Number.isFinite(result.dueAt)) {
        next = Math.floor(result.dueAt);
        payload = {
          json: result.payload === null || result.payload === undefined
            ? null
            : JSON.stringify(result.payload),
        };
      }
    } catch (err) {
      // A failing handler keeps its timer: it fires again after the lease.
      this.#logger?.log({
        level: "error",
        msg: `timer ${timer.kind} ${JSON.stringify(timer.key)} failed: ${
          (err as Error)?.stack ?? err
        }`,
      });
      next = now + this.#leaseMs;
    }
    await this.#finish(id, seq, next, payload);
    if (next !== null) this.#wake(next);
  }

  /** Releases the lease and applies the handler's result (unless re-scheduled meanwhile). */
  async #finish(
    id: string,
    seq: number,
    next: number | null,
    payload?: { json: string | null },
  ): Promise<void> {
    const statements: { sql: string; args: InValue[] }[] = next === null
      ? [
        {
          sql: "DELETE FROM timers WHERE id = ? AND seq = ? AND lease_owner = ?",
          args: [id, seq, this.owner],
        },
        {
          sql:
            "UPDATE timers SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
          args: [id, this.owner],
        },
      ]
      : payload
      ? [{
        sql: "UPDATE timers SET lease_owner = NULL, lease_until = NULL, " +
          "due_at = CASE WHEN seq = ? THEN ? ELSE due_at END, " +
          "payload = CASE WHEN seq = ? THEN ? ELSE payload END WHERE id = ? AND lease_owner = ?",
        args: [seq, next, seq, payload.json, id, this.owner],
      }]
      : [{
        sql: "UPDATE timers SET lease_owner = NULL, lease_until = NULL, " +
          "due_at = CASE WHEN seq = ? THEN ? ELSE MIN(due_at, ?) END WHERE id = ? AND lease_owner = ?",
        args: [seq, next, next, id, this.owner],
      }];
    await this.#client.batch(statements, "write");
  }

  /** Re-arms the real timer if `dueAt` is earlier than what it is armed for. */
  #wake(dueAt: number): void {
    if (!this.#started || this.#closed || dueAt >= this.#armedFor) return;
    this.#arm(dueAt);
  }

  #arm(dueAt: number): void {
    clearTimeout(this.#timer);
    const now = this.clock.now();
    const target = Math.min(dueAt, now + this.#refreshMs);
    this.#armedFor = target;
    const delay = Math.min(Math.max(0, target - now), MAX_DELAY);
    this.#timer = setTimeout(() => this.#tick(), delay);
  }

  #tick(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    if (this.#closed) return;
    this.runDue().catch((err) => {
      this.#logger?.log({
        level: "error",
        msg: `timer pass failed: ${(err as Error)?.stack ?? err}`,
      });
    }).finally(() => this.#rearm());
  }

  /** Arms for the earliest time anything registered can fire. */
  #rearm(): void {
    if (this.#closed) return;
    this.#nextDue().then(
      (due) => {
        if (this.#closed) return;
        // An earlier #wake may have armed meanwhile: keep the earlier.
        const target = Math.min(due ?? Infinity, this.#armedFor);
        this.#arm(target);
      },
      (err) => {
        this.#logger?.log({
          level: "error",
          msg: `timer refresh failed: ${(err as Error)?.message ?? err}`,
        });
        if (!this.#closed) this.#arm(this.clock.now() + this.#refreshMs);
      },
    );
  }

  /** The earliest time a timer of a registered kind can be claimed. */
  async #nextDue(): Promise<number | null> {
    const kinds = [...this.#handlers.keys()];
    if (!kinds.length) return null;
    // timers whose handler still runs here are re-armed when it finishes
    const busy = [...this.#inFlight];
    const rs = await this.#client.execute({
      sql: "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at " +
        `THEN lease_until ELSE due_at END) AS due FROM timers WHERE kind IN (${
          marks(kinds.length)
        })` + (busy.length ? ` AND id NOT IN (${marks(busy.length)})` : ""),
      args: [...kinds, ...busy],
    });
    const due = rs.rows[0]?.due;
    return due === null || due === undefined ? null : Number(due);
  }
}

/** The `id` of the timer `(kind, key)`. */
function timerId(kind: string, key: string): string {
  if (kind.includes(":")) {
    throw new Error(`timer kind ${JSON.stringify(kind)} must not contain ":"`);
  }
  return `${kind}:${key}`;
}

function marks(n: number): string {
  return Array.from({ length: n }, () => "?").join(", ");
}

function toRow(row: Record<string, unknown>): TimerRow {
  return {
    kind: String(row.kind),
    key: String(row.key),
    dueAt: Number(row.due_at),
    payload: row.payload === null ? null : JSON.parse(String(row.payload)),
    leaseOwner: row.lease_owner === null ? null : String(row.lease_owner),
    leaseUntil: row.lease_until === null ? null : Number(row.lease_until),
  };
}
