/**
 * WebSockets accepted by a Durable Object (`ctx.acceptWebSocket(ws, tags)`):
 * their messages, closes and errors become calls of the object's
 * `webSocketMessage(ws, message)`, `webSocketClose(ws, code, reason, wasClean)`
 * and `webSocketError(ws, error)`, delivered by the object runner through the
 * object's input gate. `getWebSockets(tag)` lists the open ones.
 *
 * Unlike Cloudflare's hibernation API the object stays in memory while it has
 * sockets (it is not evicted, see `directory.ts`), so nothing is lost and the
 * constructor does not run again between messages.
 *
 * Worker code.
 *
 * @module
 */
import { closeEnd, hookEnd, type WebSocketEnd } from "./websocket_pair.worker.ts";
import type { WorkyWebSocket } from "./types.ts";

/** Cloudflare's limits on tags. */
const MAX_TAGS = 10;
const MAX_TAG_LENGTH = 256;

/** Delivers one handler call to the object (through its input gate). */
export type HandlerCall = (method: string, args: unknown[]) => void;

/** The WebSocket half of a Durable Object's `ctx`. */
export interface ObjectSockets {
  acceptWebSocket(ws: WorkyWebSocket, tags?: string[]): void;
  getWebSockets(tag?: string): WorkyWebSocket[];
  getTags(ws: WorkyWebSocket): string[];
  /** Closes every accepted socket (eviction). */
  closeAll(code: number, reason: string): void;
  /** Accepted sockets still open. */
  readonly size: number;
}

/**
 * Builds the socket set of one object.
 *
 * @example
 * ```ts
 * import { objectSockets } from "./object_sockets.worker.ts";
 * import { WebSocketPair } from "./websocket_pair.worker.ts";
 * const sockets = objectSockets((method, args) => console.log(method, args.length));
 * const [_client, server] = Object.values(new WebSocketPair());
 * sockets.acceptWebSocket(server, ["room:a"]);
 * console.log(sockets.getWebSockets("room:a").length); // 1
 * ```
 */
export function objectSockets(call: HandlerCall): ObjectSockets {
  const open = new Map<WebSocketEnd, string[]>();
  return {
    acceptWebSocket(ws, tags = []) {
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
        throw new TypeError("acceptWebSocket(): tags must be an array of strings");
      }
      if (tags.length > MAX_TAGS) {
        throw new TypeError(`acceptWebSocket(): at most ${MAX_TAGS} tags, got ${tags.length}`);
      }
      const long = tags.find((t) => t.length > MAX_TAG_LENGTH);
      if (long !== undefined) {
        throw new TypeError(
          `acceptWebSocket(): tag "${
            long.slice(0, 40)
          }…" is longer than ${MAX_TAG_LENGTH} characters`,
        );
      }
      const end = hookEnd(ws, {
        message: (s, data) => call("webSocketMessage", [s, data]),
        close: (s, code, reason, wasClean) => {
          open.delete(s);
          call("webSocketClose", [s, code, reason, wasClean]);
        },
        error: (s, error) => call("webSocketError", [s, error]),
      });
      // hookEnd delivers events queued before it: a close among them already ran
      if (end.readyState !== 3) open.set(end, [...new Set(tags)]);
    },
    getWebSockets(tag) {
      const out: WorkyWebSocket[] = [];
      for (const [ws, tags] of open) {
        if (ws.readyState === 3) continue;
        if (tag === undefined || tags.includes(tag)) out.push(ws);
      }
      return out;
    },
    getTags(ws) {
      const tags = open.get(ws as WebSocketEnd);
      if (!tags) throw new TypeError("getTags(): this WebSocket was not accepted by this object");
      return [...tags];
    },
    closeAll(code, reason) {
      for (const ws of [...open.keys()]) closeEnd(ws, code, reason);
    },
    get size() {
      return open.size;
    },
  };
}
