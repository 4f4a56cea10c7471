/**
 * The `queue` event adapter (runs inside tenant workers): turns the host's
 * batch of stored messages into a Workers `MessageBatch`, calls the module's
 * `queue(batch, env, ctx)` and reports back, per message, what the handler
 * decided (ack, retry with a delay, or nothing) and whether it threw.
 *
 * Per message the first `ack()`/`retry()` wins; `ackAll()`/`retryAll()` apply
 * to the messages without a decision of their own (the first batch call wins).
 *
 * @module
 */
import { deserialize } from "node:v8";
import type { EventAdapter } from "../events.worker.ts";

/** A stored message as the host sends it. */
export interface QueueWireMessage {
  id: string;
  /** When it was sent, ms since the epoch. */
  timestamp: number;
  body: Uint8Array;
  contentType: string;
  attempts: number;
}

/** What the host sends for one delivery. */
export interface QueuePayload {
  queue: string;
  messages: QueueWireMessage[];
}

/** What the handler decided, reported to the host. */
export interface QueueDeliveryResult {
  /** Explicitly or implicitly acknowledged message ids. */
  acks: string[];
  /** Messages to retry, with the delay asked for (null: the consumer's default). */
  retries: [id: string, delaySeconds: number | null][];
  /** The handler's error, when it threw (undecided messages are then retried). */
  error: string | null;
}

/** Options of `retry()`. */
export interface QueueRetryOptions {
  delaySeconds?: number;
}

/**
 * One message of a batch, as on Cloudflare Workers.
 *
 * @example
 * ```ts
 * import type { Message } from "./queue.worker.ts";
 * function handle(msg: Message<{ n: number }>) {
 *   if (msg.body.n > 0) msg.ack();
 *   else msg.retry({ delaySeconds: 30 });
 * }
 * ```
 */
export interface Message<Body = unknown> {
  readonly id: string;
  readonly timestamp: Date;
  readonly body: Body;
  readonly attempts: number;
  ack(): void;
  retry(options?: QueueRetryOptions): void;
}

/** A batch of messages given to `queue(batch, env, ctx)`. */
export interface MessageBatch<Body = unknown> {
  readonly queue: string;
  readonly messages: readonly Message<Body>[];
  ackAll(): void;
  retryAll(options?: QueueRetryOptions): void;
}

const decoder = new TextDecoder();

/** Decodes a stored body by its content type. */
function decodeBody(body: Uint8Array, contentType: string): unknown {
  switch (contentType) {
    case "text":
      return decoder.decode(body);
    case "json":
      return JSON.parse(decoder.decode(body));
    case "bytes":
      return body.slice().buffer;
    case "v8":
      return deserialize(body);
    default:
      throw new TypeError(`unknown queue message content type ${JSON.stringify(contentType)}`);
  }
}

function delayOf(options: QueueRetryOptions | undefined): number | null {
  const d = options?.delaySeconds;
  if (d === undefined || d === null) return null;
  if (typeof d !== "number" || !Number.isFinite(d) || d < 0 || d > 43_200) {
    throw new RangeError(
      `retry(): delaySeconds must be a number from 0 to 43200, got ${String(d)}`,
    );
  }
  return Math.floor(d);
}

/**
 * Builds the `queue` event handler from a tenant module, or undefined when
 * the module has no `queue` export.
 *
 * @example
 * ```ts
 * import { queueAdapter } from "./queue.worker.ts";
 * const handler = queueAdapter({ default: { queue() {} } }, {});
 * console.log(typeof handler); // "function"
 * ```
 */
// deno-lint-ignore no-explicit-any
export const queueAdapter: EventAdapter = (mod: any) => {
  const target = mod?.default;
  if (typeof target?.queue !== "function") return undefined;
  return async (payload, env, ctx): Promise<QueueDeliveryResult> => {
    const p = payload as QueuePayload;
    const decided = new Map<string, ["ack"] | ["retry", number | null]>();
    let batchDecision: ["ack"] | ["retry", number | null] | undefined;
    const messages: Message[] = p.messages.map((m) => {
      const body = decodeBody(m.body, m.contentType);
      return Object.freeze({
        id: m.id,
        timestamp: new Date(m.timestamp),
        body,
        attempts: m.attempts,
        ack() {
          if (!decided.has(m.id)) decided.set(m.id, ["ack"]);
        },
        retry(options?: QueueRetryOptions) {
          const delay = delayOf(options);
          if (!decided.has(m.id)) decided.set(m.id, ["retry", delay]);
        },
      });
    });
    const batch: MessageBatch = Object.freeze({
      queue: p.queue,
      messages: Object.freeze(messages),
      ackAll() {
        batchDecision ??= ["ack"];
      },
      retryAll(options?: QueueRetryOptions) {
        const delay = delayOf(options);
        batchDecision ??= ["retry", delay];
      },
    });
    let error: string | null = null;
    try {
      await target.queue(batch, env, ctx);
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    }
    const result: QueueDeliveryResult = { acks: [], retries: [], error };
    for (const m of p.messages) {
      const d = decided.get(m.id) ?? batchDecision ?? (error === null ? ["ack"] : ["retry", null]);
      if (d[0] === "ack") result.acks.push(m.id);
      else result.retries.push([m.id, d[1]]);
    }
    return result;
  };
};
