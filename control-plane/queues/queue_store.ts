/**
 * Queue messages in libSQL: enqueue, lease a batch, ack, retry, dead-letter,
 * and counts. Every state change is one statement (or one write batch), so
 * several processes can share the table: a message is delivered only by the
 * holder of its live lease, and a dead holder's lease simply runs out.
 *
 * @module
 */
import type { Client, InStatement } from "@libsql/client";
import type { QueueWireSend } from "../../runtime/bindings/queue/types.ts";

/** A leased message, ready to hand to a consumer. */
export interface LeasedMessage {
  id: string;
  body: Uint8Array;
  contentType: string;
  /** This delivery's attempt number (1 on the first delivery). */
  attempts: number;
  enqueuedAt: number;
}

/** Counts of one queue, for `worky queues`. */
export interface QueueCounts {
  queue: string;
  /** Ready to deliver now (not leased, not delayed). */
  ready: number;
  /** Waiting for their `delaySeconds` or retry delay. */
  delayed: number;
  /** Leased by a consumer right now. */
  inFlight: number;
  /** Failed `max_retries` times. */
  deadLettered: number;
}

/**
 * The message table.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { QueueStore } from "./queue_store.ts";
 * const database = await openDatabase(":memory:");
 * const store = new QueueStore(database.client);
 * const body = new TextEncoder().encode('"hi"');
 * await store.enqueue("jobs", [{ body, contentType: "json", delaySeconds: 0 }], 0);
 * const batch = await store.lease("jobs", 10, "me", 30_000, 0);
 * await store.ack(batch.map((m) => m.id), "me");
 * database.close();
 * ```
 */
export class QueueStore {
  constructor(private readonly client: Client) {}

  /** Stores messages (one transaction); returns their ids. */
  async enqueue(queue: string, messages: QueueWireSend[], now: number): Promise<string[]> {
    const ids = messages.map(() => crypto.randomUUID());
    const statements: InStatement[] = messages.map((m, i) => ({
      sql: "INSERT INTO queue_messages (id, queue, body, content_type, attempts, enqueued_at, " +
        "visible_at, state) VALUES (?, ?, ?, ?, 0, ?, ?, 'ready')",
      args: [ids[i], queue, m.body, m.contentType, now, now + m.delaySeconds * 1000],
    }));
    await this.client.batch(statements, "write");
    return ids;
  }

  /**
   * Leases up to `max` visible messages (oldest first) to `owner` until
   * `now + leaseMs`, counting the attempt.
   */
  async lease(
    queue: string,
    max: number,
    owner: string,
    leaseMs: number,
    now: number,
  ): Promise<LeasedMessage[]> {
    const rs = await this.client.execute({
      sql: "UPDATE queue_messages SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 " +
        "WHERE id IN (SELECT id FROM queue_messages WHERE queue = ? AND state = 'ready' AND " +
        "visible_at <= ? AND (lease_until IS NULL OR lease_until <= ?) " +
        "ORDER BY visible_at, rowid LIMIT ?) " +
        "RETURNING id, body, content_type, attempts, enqueued_at",
      args: [owner, now + leaseMs, queue, now, now, max],
    });
    return rs.rows.map((r) => ({
      id: String(r.id),
      body: toBytes(r.body),
      contentType: String(r.content_type),
      attempts: Number(r.attempts),
      enqueuedAt: Number(r.enqueued_at),
    })).sort((a, b) => a.enqueuedAt - b.enqueuedAt);
  }

  /** Deletes acknowledged messages still leased by `owner`. */
  async ack(ids: string[], owner: string): Promise<void> {
    if (!ids.length) return;
    await this.client.batch(
      ids.map((id) => ({
        sql: "DELETE FROM queue_messages WHERE id = ? AND lease_owner = ?",
        args: [id, owner],
      })),
      "write",
    );
  }

  /** Makes a message visible again at `visibleAt` (if `owner` still holds it). */
  async retry(id: string, owner: string, visibleAt: number, error: string | null): Promise<void> {
    await this.client.execute({
      sql: "UPDATE queue_messages SET lease_owner = NULL, lease_until = NULL, visible_at = ?, " +
        "error = ? WHERE id = ? AND lease_owner = ?",
      args: [visibleAt, error, id, owner],
    });
  }

  /**
   * Marks a message dead; with a dead-letter queue, a copy (attempts reset)
   * is enqueued there in the same transaction.
   */
  async deadLetter(
    id: string,
    owner: string | null,
    dlq: string | null,
    now: number,
    error: string | null,
  ): Promise<void> {
    const ownerCheck = owner === null ? "" : " AND lease_owner = ?";
    const statements: InStatement[] = [];
    if (dlq !== null) {
      statements.push({
        sql: "INSERT INTO queue_messages (id, queue, body, content_type, attempts, enqueued_at, " +
          "visible_at, state) SELECT ?, ?, body, content_type, 0, ?, ?, 'ready' FROM " +
          `queue_messages WHERE id = ? AND state = 'ready'${ownerCheck}`,
        args: [crypto.randomUUID(), dlq, now, now, id, ...(owner === null ? [] : [owner])],
      });
    }
    statements.push({
      sql: "UPDATE queue_messages SET state = 'dead', lease_owner = NULL, lease_until = NULL, " +
        `error = ? WHERE id = ? AND state = 'ready'${ownerCheck}`,
      args: [error, id, ...(owner === null ? [] : [owner])],
    });
    await this.client.batch(statements, "write");
  }

  /** Messages whose lease ran out after their last allowed attempt (their consumer died). */
  async exhausted(queue: string, maxAttempts: number, now: number): Promise<string[]> {
    const rs = await this.client.execute({
      sql: "SELECT id FROM queue_messages WHERE queue = ? AND state = 'ready' AND attempts >= ? " +
        "AND lease_until IS NOT NULL AND lease_until <= ? AND visible_at <= ?",
      args: [queue, maxAttempts, now, now],
    });
    return rs.rows.map((r) => String(r.id));
  }

  /** Ready, unleased messages visible now, and the oldest one's visible time. */
  async readyNow(queue: string, now: number): Promise<{ count: number; oldest: number | null }> {
    const rs = await this.client.execute({
      sql: "SELECT COUNT(*) AS n, MIN(visible_at) AS oldest FROM queue_messages WHERE queue = ? " +
        "AND state = 'ready' AND visible_at <= ? AND (lease_until IS NULL OR lease_until <= ?)",
      args: [queue, now, now],
    });
    const row = rs.rows[0];
    return { count: Number(row.n), oldest: row.oldest === null ? null : Number(row.oldest) };
  }

  /** The next time something in the queue becomes deliverable (a delay ends or a lease runs out). */
  async nextWake(queue: string): Promise<number | null> {
    const rs = await this.client.execute({
      sql: "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > visible_at " +
        "THEN lease_until ELSE visible_at END) AS t FROM queue_messages " +
        "WHERE queue = ? AND state = 'ready'",
      args: [queue],
    });
    const t = rs.rows[0]?.t;
    return t === null || t === undefined ? null : Number(t);
  }

  /** Counts per queue (every queue with rows, plus `names`). */
  async counts(now: number, names: string[] = []): Promise<QueueCounts[]> {
    const rs = await this.client.execute({
      sql: "SELECT queue, " +
        "SUM(state = 'ready' AND visible_at <= ? AND (lease_until IS NULL OR lease_until <= ?)) AS ready, " +
        "SUM(state = 'ready' AND visible_at > ? AND (lease_until IS NULL OR lease_until <= ?)) AS delayed, " +
        "SUM(state = 'ready' AND lease_until > ?) AS in_flight, " +
        "SUM(state = 'dead') AS dead FROM queue_messages GROUP BY queue",
      args: [now, now, now, now, now],
    });
    const out = new Map<string, QueueCounts>();
    for (const name of names) {
      out.set(name, { queue: name, ready: 0, delayed: 0, inFlight: 0, deadLettered: 0 });
    }
    for (const r of rs.rows) {
      out.set(String(r.queue), {
        queue: String(r.queue),
        ready: Number(r.ready ?? 0),
        delayed: Number(r.delayed ?? 0),
        inFlight: Number(r.in_flight ?? 0),
        deadLettered: Number(r.dead ?? 0),
      });
    }
    return [...out.values()].sort((a, b) => a.queue.localeCompare(b.queue));
  }
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice();
  }
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  throw new Error("queue message body is not a blob");
}
