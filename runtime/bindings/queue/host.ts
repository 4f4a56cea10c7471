/**
 * The host half of a queue producer binding: re-checks every message the stub
 * sends (a tenant can call RPC directly) and hands them to the control
 * plane's queue backend, which stores them before `send()` resolves.
 *
 * @module
 */
import { WorkyError } from "../../errors.ts";
import type {
  BindingHost,
  BindingPlugin,
  BindingSpec,
  CallMeta,
  HostBindingContext,
} from "../types.ts";
import { requireConfigString, requireService } from "../host_requirements.ts";
import { CONTENT_TYPES, QUEUE_LIMITS, type QueueBackend, type QueueWireSend } from "./types.ts";

/**
 * The producer binding host of one queue.
 *
 * @example
 * ```ts
 * import { QueueBindingHost } from "./host.ts";
 * const sent: unknown[] = [];
 * const host = new QueueBindingHost("JOBS", "jobs", { send: async (_q, m) => void sent.push(...m) });
 * const body = new TextEncoder().encode('"hi"');
 * await host.call("send", [[{ body, contentType: "json", delaySeconds: 0 }]], { tenant: "t" });
 * console.log(sent.length); // 1
 * ```
 */
export class QueueBindingHost implements BindingHost {
  constructor(
    readonly binding: string,
    readonly queue: string,
    private readonly backend: QueueBackend,
  ) {}

  async call(method: string, args: unknown[], _meta: CallMeta): Promise<unknown> {
    if (method !== "send") {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `queue binding "${this.binding}" has no method ${JSON.stringify(method)}`,
      );
    }
    const list = Array.isArray(args) ? args[0] : undefined;
    if (
      !Array.isArray(list) || list.length === 0 || list.length > QUEUE_LIMITS.MAX_BATCH_MESSAGES
    ) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `queue "${this.queue}": send needs 1 to ${QUEUE_LIMITS.MAX_BATCH_MESSAGES} messages`,
      );
    }
    const messages = list.map((m, i) => this.#check(m, i));
    await this.backend.send(this.queue, messages);
    return undefined;
  }

  #check(m: unknown, i: number): QueueWireSend {
    const msg = m as Partial<QueueWireSend> | null;
    if (!msg || !(msg.body instanceof Uint8Array)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `queue "${this.queue}": message ${i} has no encoded body`,
      );
    }
    if (!CONTENT_TYPES.includes(msg.contentType!)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `queue "${this.queue}": message ${i}: unknown contentType ${
          JSON.stringify(msg.contentType)
        }`,
      );
    }
    if (msg.body.byteLength > QUEUE_LIMITS.MAX_MESSAGE_BYTES) {
      throw new WorkyError(
        "ERR_PAYLOAD_TOO_LARGE",
        `Queue "${this.queue}": message body of ${msg.body.byteLength} bytes exceeds the limit of ` +
          `${QUEUE_LIMITS.MAX_MESSAGE_BYTES} bytes (128 KB) per message`,
      );
    }
    const delay = msg.delaySeconds ?? 0;
    if (!Number.isInteger(delay) || delay < 0 || delay > QUEUE_LIMITS.MAX_DELAY_SECONDS) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `queue "${this.queue}": message ${i}: delaySeconds must be an integer from 0 to ` +
          `${QUEUE_LIMITS.MAX_DELAY_SECONDS}`,
      );
    }
    return { body: msg.body, contentType: msg.contentType!, delaySeconds: delay };
  }
}

/**
 * The queue producer plugin (kind `"queue"`): `config.queue` names the queue;
 * the control plane provides `services.queues` (a {@linkcode QueueBackend}).
 *
 * @example
 * ```ts
 * import { queuePlugin } from "./host.ts";
 * const host = queuePlugin.createHost(
 *   { name: "JOBS", kind: "queue", config: { queue: "jobs" } },
 *   { tenant: "shop", clock: { now: Date.now }, services: { queues: { send: async () => {} } } },
 * );
 * ```
 */
export const queuePlugin: BindingPlugin = {
  kind: "queue",
  createHost(spec: BindingSpec, ctx: HostBindingContext): BindingHost {
    const queue = requireConfigString("queue", spec, ctx, "queue");
    const backend = requireService<QueueBackend>("queue", spec, ctx, {
      service: "queues",
      what: "a queue backend",
      valid: (v) => typeof (v as QueueBackend).send === "function",
    });
    return new QueueBindingHost(spec.name, queue, backend);
  },
};
