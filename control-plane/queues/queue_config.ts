/**
 * Queue keys of a tenant: producer bindings (`queues`) and consumers
 * (`queue_consumers`), plus the cross-tenant checks (every queue a producer
 * names is consumed somewhere or is a dead-letter queue; one consumer per queue).
 *
 * ```toml
 * [tenants.shop]
 * queues = { JOBS = "jobs" }          # env.JOBS sends to the queue "jobs"
 *
 * [[tenants.worker.queue_consumers]]
 * queue = "jobs"                      # required
 * max_batch_size = 10                 # 1..100, default 10
 * max_batch_timeout_ms = 1000         # 0..60000, default 1000: wait this long to fill a batch
 * max_retries = 3                     # 0..100, default 3: deliveries after the first
 * retry_delay_seconds = 0             # 0..43200, default 0: delay before a retry
 * retry_backoff = "constant"          # or "exponential": delay * 2^(attempts-1)
 * dead_letter_queue = "jobs-dlq"      # optional: where messages go after max_retries
 * ```
 *
 * @module
 */
import { z } from "zod";
import { intIn } from "../config/_values.ts";

/** Queue names: letters, digits, `-` and `_`, 1..63 characters. */
export const QUEUE_NAME: RegExp = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** How retry delays grow. */
export type RetryBackoff = "constant" | "exponential";

/** One normalized `[[tenants.<name>.queue_consumers]]` entry. */
export interface QueueConsumerConfig {
  queue: string;
  maxBatchSize: number;
  maxBatchTimeoutMs: number;
  maxRetries: number;
  retryDelaySeconds: number;
  retryBackoff: RetryBackoff;
  deadLetterQueue: string | null;
}

/** A queue name. */
export const queueName = z.string().regex(QUEUE_NAME, {
  error: (iss) =>
    `${JSON.stringify(iss.input)} is not a valid queue name (letters, digits, - and _, at most 63)`,
});

/**
 * `queue_consumers` of a tenant, normalized to camelCase.
 *
 * @example
 * ```ts
 * import { queueConsumersSchema } from "./queue_config.ts";
 * console.log(queueConsumersSchema.parse([{ queue: "jobs" }])[0].maxBatchSize); // 10
 * ```
 */
export const queueConsumersSchema = z.array(
  z.strictObject({
    queue: queueName,
    max_batch_size: intIn(1, 100).default(10),
    max_batch_timeout_ms: intIn(0, 60_000).default(1_000),
    max_retries: intIn(0, 100).default(3),
    retry_delay_seconds: intIn(0, 43_200).default(0),
    retry_backoff: z.enum(["constant", "exponential"], {
      error: (iss) => `must be "constant" or "exponential", got ${JSON.stringify(iss.input)}`,
    }).default("constant"),
    dead_letter_queue: queueName.optional(),
  }).transform((c): QueueConsumerConfig => ({
    queue: c.queue,
    maxBatchSize: c.max_batch_size,
    maxBatchTimeoutMs: c.max_batch_timeout_ms,
    maxRetries: c.max_retries,
    retryDelaySeconds: c.retry_delay_seconds,
    retryBackoff: c.retry_backoff,
    deadLetterQueue: c.dead_letter_queue ?? null,
  })),
).default([]);

/**
 * `queues = { BINDING = "queue-name" }`: producer bindings of a tenant
 * (binding names are checked by the tenant schema).
 */
export const queueProducersSchema = z.record(z.string(), queueName).default({});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Whole-file checks on the raw document: a queue is consumed by at most one
 * tenant, a dead-letter queue is not its own queue, and every producer
 * binding names a queue some tenant consumes (or a dead-letter queue).
 */
export function checkQueueNames(file: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const tenants = file.tenants;
  if (!isObject(tenants)) return;
  const consumed = new Map<string, string>();
  const known = new Set<string>();
  for (const [name, tenant] of Object.entries(tenants)) {
    // Runs on the parsed file (camelCase keys) or, when other checks failed, on raw input.
    const list = isObject(tenant) ? tenant.queueConsumers ?? tenant.queue_consumers : undefined;
    if (!Array.isArray(list)) continue;
    list.forEach((c, i) => {
      if (!isObject(c) || typeof c.queue !== "string") return;
      const first = consumed.get(c.queue);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["tenants", name, "queue_consumers", i, "queue"],
          message: `queue ${JSON.stringify(c.queue)} is already consumed by ${first} ` +
            "(a queue has one consumer)",
        });
      } else consumed.set(c.queue, `tenants.${name}`);
      known.add(c.queue);
      const dlq = c.deadLetterQueue ?? c.dead_letter_queue;
      if (typeof dlq === "string") {
        known.add(dlq);
        if (dlq === c.queue) {
          ctx.addIssue({
            code: "custom",
            path: ["tenants", name, "queue_consumers", i, "dead_letter_queue"],
            message: `the dead-letter queue must differ from the queue ${JSON.stringify(c.queue)}`,
          });
        }
      }
    });
  }
  for (const [name, tenant] of Object.entries(tenants)) {
    const producers = isObject(tenant) ? tenant.queues : undefined;
    if (!isObject(producers)) continue;
    for (const [binding, queue] of Object.entries(producers)) {
      if (typeof queue !== "string" || !QUEUE_NAME.test(queue) || known.has(queue)) continue;
      const list = [...known].sort().map((q) => JSON.stringify(q)).join(", ");
      ctx.addIssue({
        code: "custom",
        path: ["tenants", name, "queues", binding],
        message: `unknown queue ${JSON.stringify(queue)}: no tenant consumes it ` +
          `(known queues: ${list || "none"}; add [[tenants.<name>.queue_consumers]] ` +
          `queue = ${JSON.stringify(queue)})`,
      });
    }
  }
}
