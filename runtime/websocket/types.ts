/**
 * Tenant-facing WebSocket types, shaped like Cloudflare's: the global
 * `WebSocketPair` and the sockets it makes. Types only: imported by both sides.
 *
 * @module
 */

/** What a WebSocket listener receives for `"message"` (and what `webSocketMessage` gets). */
export type WebSocketData = string | ArrayBuffer;

/** The `"message"` event of a {@link WorkyWebSocket}. */
export interface WorkyMessageEvent {
  readonly type: "message";
  readonly data: WebSocketData;
}

/** The `"close"` event of a {@link WorkyWebSocket}. */
export interface WorkyCloseEvent {
  readonly type: "close";
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** The `"error"` event of a {@link WorkyWebSocket}. */
export interface WorkyErrorEvent {
  readonly type: "error";
  readonly message: string;
  readonly error: Error;
}

/** Events by name, for `addEventListener`. */
export interface WorkyWebSocketEventMap {
  message: WorkyMessageEvent;
  close: WorkyCloseEvent;
  error: WorkyErrorEvent;
}

/**
 * One end of a {@link WebSocketPair}. The server end is `accept()`ed (or given
 * to `ctx.acceptWebSocket` in a Durable Object); the client end is returned in
 * `new Response(null, { status: 101, webSocket: client })`.
 */
export interface WorkyWebSocket {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  readonly url: string | null;
  readonly protocol: string | null;
  readonly extensions: string | null;
  /** Starts delivering events (messages that arrived earlier are queued until then). */
  accept(): void;
  send(message: string | ArrayBuffer | ArrayBufferView): void;
  /** `code` is 1000–4999 (not 1004–1006, 1015); `reason` at most 123 bytes. */
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof WorkyWebSocketEventMap>(
    type: K,
    listener: (event: WorkyWebSocketEventMap[K]) => unknown,
  ): void;
  removeEventListener<K extends keyof WorkyWebSocketEventMap>(
    type: K,
    listener: (event: WorkyWebSocketEventMap[K]) => unknown,
  ): void;
  onmessage: ((event: WorkyMessageEvent) => unknown) | null;
  onclose: ((event: WorkyCloseEvent) => unknown) | null;
  onerror: ((event: WorkyErrorEvent) => unknown) | null;
  /** Keeps a structured-clone value with the socket (at most 2048 bytes serialized). */
  serializeAttachment(value: unknown): void;
  /** The value given to `serializeAttachment`, or null. */
  deserializeAttachment<T = unknown>(): T | null;
}

/** The global `WebSocketPair`: `const [client, server] = Object.values(new WebSocketPair())`. */
export interface WebSocketPairConstructor {
  new (): { 0: WorkyWebSocket; 1: WorkyWebSocket };
}

/** `ResponseInit` with the `webSocket` of a 101 answer. */
export interface WorkyResponseInit extends ResponseInit {
  webSocket?: WorkyWebSocket | null;
}
