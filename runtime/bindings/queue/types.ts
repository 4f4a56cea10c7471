/**
 * Types and limits of the queue binding, shared by its host and stub sides
 * (types and constants only).
 *
 * @module
 */

/** Cloudflare's limits. */
export const QUEUE_LIMITS = {
  /** Largest message body, bytes (128 KB). */
  MAX_MESSAGE_BYTES: 128 * 1024,
  /** Most messages per `sendBatch`. */
  MAX_BATCH_MESSAGES: 100,
  /** Largest `sendBatch` in total, bytes (256 KB). */
  MAX_BATCH_BYTES: 256 * 1024,
  /** Longest `delaySeconds` (12 hours). */
  MAX_DELAY_SECONDS: 43_200,
} as const;

/** How a message body is encoded: as on Cloudflare; `v8` (structured clone) is the default. */
export type QueueContentType = "text" | "bytes" | "json" | "v8";

/** The content types a message may have. */
export const CONTENT_TYPES: readonly QueueContentType[] = ["text", "bytes", "json", "v8"];

/** Options of `send()`. */
export interface QueueSendOptions {
  contentType?: QueueContentType;
  delaySeconds?: number;
}

/** Options of `sendBatch()`. */
export interface QueueSendBatchOptions {
  delaySeconds?: number;
}

/** One message of `sendBatch()`. */
export interface MessageSendRequest<Body = unknown> {
  body: Body;
  contentType?: QueueContentType;
  delaySeconds?: number;
}

/**
 * A queue producer binding on `env`, as on Cloudflare Workers.
 *
 * @example
 * ```ts
 * import type { Queue } from "./types.ts";
 * export default {
 *   async fetch(_req: Request, env: { JOBS: Queue<{ n: number }> }) {
 *     await env.JOBS.send({ n: 1 }, { delaySeconds: 10 });
 *     return new Response("queued");
 *   },
 * };
 * ```
 */
export interface Queue<Body = unknown> {
  send(body: Body, options?: QueueSendOptions): Promise<void>;
  sendBatch(
    messages: Iterable<MessageSendRequest<Body>>,
    options?: QueueSendBatchOptions,
  ): Promise<void>;
}

/** A message as it crosses from the stub to the host: the body already encoded. */
export interface QueueWireSend {
  body: Uint8Array;
  contentType: QueueContentType;
  delaySeconds: number;
}

/** Where the host side puts messages (`services.queues`, provided by the control plane). */
export interface QueueBackend {
  /** Stores the messages durably, then resolves. */
  send(queue: string, messages: QueueWireSend[]): Promise<void>;
}
