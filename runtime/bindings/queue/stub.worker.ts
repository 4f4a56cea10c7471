/**
 * What a producer tenant sees on `env.<QUEUE>`: `send()` and `sendBatch()`.
 * Bodies are encoded here (json, text, bytes, or v8 = structured clone) and
 * checked against the 128 KB limit before they cross to the host.
 *
 * @module
 */
import { serialize } from "node:v8";
import type { BindingSpec, RpcCall, StubFactory } from "../types.ts";
import {
  CONTENT_TYPES,
  type MessageSendRequest,
  type Queue,
  QUEUE_LIMITS,
  type QueueContentType,
  type QueueSendBatchOptions,
  type QueueSendOptions,
  type QueueWireSend,
} from "./types.ts";

const encoder = new TextEncoder();

/**
 * Builds the producer stub of one queue binding.
 *
 * @example
 * ```ts
 * import { createQueueStub } from "./stub.worker.ts";
 * import type { Queue } from "./types.ts";
 * const rpc = (_b: string, _m: string, args: unknown[]) => {
 *   console.log(args);
 *   return Promise.resolve();
 * };
 * const jobs = createQueueStub({ name: "JOBS", kind: "queue", config: { queue: "jobs" } }, rpc) as Queue;
 * await jobs.send({ n: 1 }, { contentType: "json" });
 * ```
 */
export const createQueueStub: StubFactory = (spec: BindingSpec, rpc: RpcCall): Queue =>
  new QueueStub(spec.name, String(spec.config.queue), rpc) as unknown as Queue;

class QueueStub {
  readonly #binding: string;
  readonly #queue: string;
  readonly #rpc: RpcCall;

  constructor(binding: string, queue: string, rpc: RpcCall) {
    this.#binding = binding;
    this.#queue = queue;
    this.#rpc = rpc;
  }

  async send(body: unknown, options?: QueueSendOptions): Promise<void> {
    const message = encode(this.#queue, body, options?.contentType, options?.delaySeconds);
    await this.#rpc(this.#binding, "send", [[message]], [message.body.buffer as ArrayBuffer]);
  }

  async sendBatch(
    messages: Iterable<MessageSendRequest>,
    options?: QueueSendBatchOptions,
  ): Promise<void> {
    if (messages === null || typeof messages !== "object" || !(Symbol.iterator in messages)) {
      throw new TypeError("sendBatch(): messages must be an iterable of { body, … }");
    }
    const list = [...messages];
    if (list.length === 0) throw new TypeError("sendBatch(): at least one message is required");
    if (list.length > QUEUE_LIMITS.MAX_BATCH_MESSAGES) {
      throw new RangeError(
        `Queue "${this.#queue}": sendBatch() of ${list.length} messages exceeds the limit of ` +
          `${QUEUE_LIMITS.MAX_BATCH_MESSAGES}`,
      );
    }
    const wire = list.map((m) =>
      encode(this.#queue, m?.body, m?.contentType, m?.delaySeconds ?? options?.delaySeconds)
    );
    const total = wire.reduce((n, m) => n + m.body.byteLength, 0);
    if (total > QUEUE_LIMITS.MAX_BATCH_BYTES) {
      throw tooLarge(
        `Queue "${this.#queue}": sendBatch() of ${total} bytes exceeds the limit of ` +
          `${QUEUE_LIMITS.MAX_BATCH_BYTES} bytes (256 KB) per batch`,
      );
    }
    await this.#rpc(this.#binding, "send", [wire], wire.map((m) => m.body.buffer as ArrayBuffer));
  }
}

function tooLarge(message: string): Error {
  return Object.assign(new RangeError(message), { code: "ERR_PAYLOAD_TOO_LARGE" });
}

/** Encodes one body; throws for a bad content type, delay or size. */
function encode(
  queue: string,
  body: unknown,
  contentType: QueueContentType | undefined,
  delaySeconds: number | undefined,
): QueueWireSend {
  const type = contentType ?? "v8";
  if (!CONTENT_TYPES.includes(type)) {
    throw new TypeError(
      `Queue "${queue}": unknown contentType ${JSON.stringify(type)} (expected "text", "bytes", ` +
        `"json" or "v8")`,
    );
  }
  const delay = delaySeconds ?? 0;
  if (
    typeof delay !== "number" || !Number.isFinite(delay) || delay < 0 ||
    delay > QUEUE_LIMITS.MAX_DELAY_SECONDS
  ) {
    throw new RangeError(
      `Queue "${queue}": delaySeconds must be a number from 0 to ` +
        `${QUEUE_LIMITS.MAX_DELAY_SECONDS}, got ${String(delaySeconds)}`,
    );
  }
  let bytes: Uint8Array;
  switch (type) {
    case "text":
      if (typeof body !== "string") {
        throw new TypeError(`Queue "${queue}": a "text" message body must be a string`);
      }
      bytes = encoder.encode(body);
      break;
    case "json": {
      const json = JSON.stringify(body);
      if (json === undefined) {
        throw new TypeError(`Queue "${queue}": the message body is not JSON-serializable`);
      }
      bytes = encoder.encode(json);
      break;
    }
    case "bytes":
      if (body instanceof ArrayBuffer) bytes = new Uint8Array(body.slice(0));
      else if (ArrayBuffer.isView(body)) {
        bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
      } else {throw new TypeError(
          `Queue "${queue}": a "bytes" message body must be an ArrayBuffer or a view`,
        );}
      break;
    case "v8":
      try {
        bytes = new Uint8Array(serialize(body));
        bytes = bytes.slice(); // own buffer, transferable
      } catch (err) {
        throw new TypeError(
          `Queue "${queue}": the message body cannot be serialized: ${(err as Error).message}`,
        );
      }
      break;
  }
  if (bytes.byteLength > QUEUE_LIMITS.MAX_MESSAGE_BYTES) {
    throw tooLarge(
      `Queue "${queue}": message body of ${bytes.byteLength} bytes exceeds the limit of ` +
        `${QUEUE_LIMITS.MAX_MESSAGE_BYTES} bytes (128 KB) per message`,
    );
  }
  return { body: bytes, contentType: type, delaySeconds: Math.floor(delay) };
}
