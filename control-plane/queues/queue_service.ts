/**
 * Queues: the backend producer bindings send to, and the dispatcher that
 * delivers batches to consumer tenants.
 *
 * Every queue has one timer (kind `"queue"`, key = queue name) in the timer
 * service, due when the queue next has something to do: a message became
 * visible (sent, delay over, retry delay over), a batch's wait
 * (`max_batch_timeout_ms`) ran out, or an in-flight lease expired (its
 * consumer died). Firing it leases up to `max_batch_size` messages (attempts
 * +1) and hands them to the consumer's `queue()` handler; acknowledged
 * messages are deleted, the rest retried after the configured backoff, and a
 * message that failed `max_retries` times after its first delivery goes to the
 * dead-letter queue. Delivery is at least once: a message leaves the table
 * only when acknowledged.
 *
 * @module
 */
import type { Client } from "@libsql/client";
import type { Clock } from "../../runtime/clock.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { Deployment } from "../../runtime/deployment.ts";
import type { QueueBackend, QueueWireSend } from "../../runtime/bindings/queue/types.ts";
import type { QueueDeliveryResult, QueuePayload } from "../../runtime/events/queue.worker.ts";
import type { TenantConfig } from "../config/types.ts";
import type { QueueConsumerConfig } from "./queue_config.ts";
import { type LeasedMessage, type QueueCounts, QueueStore } from "./queue_store.ts";
import type { TimerService } from "../scheduler/timer_service.ts";

/** The timer kind of queue deliveries. */
export const QUEUE_TIMER = "queue";

/** Options of {@linkcode QueueService}. */
export interface QueueServiceOptions {
  client: Client;
  timers: TimerService;
  clock: Clock;
  logger: Logger;
  /** Added to the consumer's `timeout_ms` to get a message lease, ms (default 5000). */
  leaseMarginMs?: number;
}

interface Consumer {
  tenant: string;
  config: QueueConsumerConfig;
  timeoutMs: number;
}

/**
 * The queue backend and dispatcher of one process.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { ManualClock } from "../../runtime/clock.ts";
 * import { MemoryLogger } from "../../runtime/logger.ts";
 * import { TimerService } from "../scheduler/timer_service.ts";
 * import { QueueService } from "./queue_service.ts";
 * const database = await openDatabase(":memory:");
 * const clock = new ManualClock(0);
 * const timers = new TimerService({ client: database.client, clock });
 * const queues = new QueueService({ client: database.client, timers, clock, logger: new MemoryLogger() });
 * await queues.send("jobs", [{ body: new Uint8Array([1]), contentType: "bytes", delaySeconds: 0 }]);
 * console.log((await queues.counts())[0].ready); // 1
 * database.close();
 * ```
 */
export class QueueService implements QueueBackend {
  readonly store: QueueStore;
  readonly #timers: TimerService;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #leaseMarginMs: number;
  #consumers = new Map<string, Consumer>();
  #lookup: (tenant: string) => Pick<Deployment, "event"> | undefined = () => undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(options: QueueServiceOptions) {
    this.store = new QueueStore(options.client);
    this.#timers = options.timers;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#leaseMarginMs = options.leaseMarginMs ?? 5_000;
    this.#timers.on(QUEUE_TIMER, (t) => this.#fire(t.key), {
      accepts: (queue) => this.#consumers.has(queue),
    });
  }

  /**
   * Takes the consumers of `tenants` (their deployments found through
   * `lookup` at delivery time) and arms their queues' timers.
   */
  async configure(
    tenants: TenantConfig[],
    lookup: (tenant: string) => Pick<Deployment, "event"> | undefined,
  ): Promise<void> {
    this.#lookup = lookup;
    this.#consumers = new Map(
      tenants.flatMap((t) =>
        (t.queueConsumers ?? []).map((c) =>
          [c.queue, {
            tenant: t.name,
            config: c,
            timeoutMs: t.limits.timeoutMs,
          }] as [string, Consumer]
        )
      ),
    );
    for (const queue of this.#consumers.keys()) {
      const next = await this.store.nextWake(queue);
      if (next !== null) {
        await this.#timers.schedule(QUEUE_TIMER, queue, next, null, { ifEarlier: true });
      }
    }
  }

  /** The consumer names, for listings. */
  get consumedQueues(): string[] {
    return [...this.#consumers.keys()];
  }

  /** Stores messages (durably, before resolving) and wakes the queue's dispatcher. */
  async send(queue: string, messages: QueueWireSend[]): Promise<void> {
    const now = this.#clock.now();
    await this.store.enqueue(queue, messages, now);
    const due = Math.min(...messages.map((m) => now + m.delaySeconds * 1000));
    await this.#timers.schedule(QUEUE_TIMER, queue, due, null, { ifEarlier: true });
  }

  /** Depth, delayed, in-flight and dead-lettered counts per queue. */
  counts(): Promise<QueueCounts[]> {
    return this.store.counts(this.#clock.now(), this.consumedQueues);
  }

  /** Resolves when every delivery started so far has been settled. */
  async idle(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** The queue's timer fired: dead-letter abandoned messages, then deliver a batch if one is due. */
  async #fire(queue: string): Promise<number | null> {
    const consumer = this.#consumers.get(queue)!;
    const c = consumer.config;
    const now = this.#clock.now();
    for (const id of await this.store.exhausted(queue, c.maxRetries + 1, now)) {
      await this.store.deadLetter(
        id,
        null,
        c.deadLetterQueue,
        now,
        "consumer did not finish the last attempt",
      );
      await this.#wakeDlq(c, now);
    }
    const ready = await this.store.readyNow(queue, now);
    if (ready.count === 0) return await this.store.nextWake(queue);
    if (ready.count < c.maxBatchSize && ready.oldest! + c.maxBatchTimeoutMs > now) {
      return ready.oldest! + c.maxBatchTimeoutMs;
    }
    const batch = await this.store.lease(
      queue,
      c.maxBatchSize,
      this.#timers.owner,
      consumer.timeoutMs + this.#leaseMarginMs,
      now,
    );
    if (batch.length) {
      const p = this.#deliver(queue, consumer, batch).catch((err) => {
        this.#logger.log({
          level: "error",
          msg: `queue ${JSON.stringify(queue)}: delivery failed: ${(err as Error)?.stack ?? err}`,
          tenant: consumer.tenant,
        });
      });
      this.#inFlight.add(p);
      p.finally(() => this.#inFlight.delete(p));
    }
    return await this.store.nextWake(queue);
  }

  async #deliver(queue: string, consumer: Consumer, batch: LeasedMessage[]): Promise<void> {
    const requestId = `queue-${crypto.randomUUID()}`;
    const deployment = this.#lookup(consumer.tenant);
    let result: QueueDeliveryResult;
    if (!deployment) {
      result = {
        acks: [],
        retries: batch.map((m) => [m.id, null]),
        error: `tenant "${consumer.tenant}" is not deployed`,
      };
    } else {
      const payload: QueuePayload = {
        queue,
        messages: batch.map((m) => ({
          id: m.id,
          timestamp: m.enqueuedAt,
          body: m.body,
          contentType: m.contentType,
          attempts: m.attempts,
        })),
      };
      try {
        result = await deployment.event("queue", payload, requestId) as QueueDeliveryResult;
      } catch (err) {
        result = {
          acks: [],
          retries: batch.map((m) => [m.id, null]),
          error: (err as Error)?.message ?? String(err),
        };
      }
    }
    if (result.error) {
      this.#logger.log({
        level: "error",
        msg: `queue ${JSON.stringify(queue)}: consumer failed: ${result.error}`,
        tenant: consumer.tenant,
        requestId,
      });
    }
    const owner = this.#timers.owner;
    await this.store.ack(result.acks, owner);
    const now = this.#clock.now();
    const c = consumer.config;
    let wake = Infinity;
    for (const [id, delaySeconds] of result.retries) {
      const msg = batch.find((m) => m.id === id);
      if (!msg) continue;
      if (msg.attempts > c.maxRetries) {
        await this.store.deadLetter(id, owner, c.deadLetterQueue, now, result.error);
        await this.#wakeDlq(c, now);
        continue;
      }
      const visibleAt = now + retryDelaySeconds(c, msg.attempts, delaySeconds) * 1000;
      await this.store.retry(id, owner, visibleAt, result.error);
      wake = Math.min(wake, visibleAt);
    }
    if (wake !== Infinity) {
      await this.#timers.schedule(QUEUE_TIMER, queue, wake, null, { ifEarlier: true });
    }
  }

  async #wakeDlq(c: QueueConsumerConfig, now: number): Promise<void> {
    if (c.deadLetterQueue !== null) {
      await this.#timers.schedule(QUEUE_TIMER, c.deadLetterQueue, now, null, { ifEarlier: true });
    }
  }
}

/**
 * The delay before retrying a message after its `attempts`-th delivery: the
 * handler's `retry({ delaySeconds })`, else the consumer's
 * `retry_delay_seconds`, doubled per attempt with `retry_backoff = "exponential"`.
 *
 * @example
 * ```ts
 * import { retryDelaySeconds } from "./queue_service.ts";
 * const c = { retryDelaySeconds: 5, retryBackoff: "exponential" as const };
 * console.log(retryDelaySeconds(c, 3, null)); // 20
 * ```
 */
export function retryDelaySeconds(
  c: Pick<QueueConsumerConfig, "retryDelaySeconds" | "retryBackoff">,
  attempts: number,
  asked: number | null,
): number {
  if (asked !== null) return asked;
  const base = c.retryDelaySeconds;
  const delay = c.retryBackoff === "exponential" ? base * 2 ** Math.max(0, attempts - 1) : base;
  return Math.min(delay, 43_200);
}
