/**
 * A real WebSocket client (Deno's `WebSocket`) for tests: queues what it
 * receives so a test awaits the next message or the close instead of sleeping.
 */

/** A connected (or failed) client. */
export interface TestSocket {
  ws: WebSocket;
  /** Resolves on open; rejects if the connection fails before opening. */
  opened: Promise<void>;
  /** Resolves with the close event (code, reason, wasClean). */
  closed: Promise<{ code: number; reason: string; wasClean: boolean }>;
  /** True once an `error` event fired. */
  errored(): boolean;
  /** The next message not yet taken (waits for one). */
  next(): Promise<string | ArrayBuffer>;
  /** The next message parsed as JSON. */
  nextJson<T = Record<string, unknown>>(): Promise<T>;
  /** The next JSON message with `type` (skipping others). */
  nextOfType<T = Record<string, unknown>>(type: string): Promise<T>;
  send(data: string | ArrayBufferLike | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** Connects to `url` (http(s) is turned into ws(s)). */
export function connect(url: string): TestSocket {
  const ws = new WebSocket(url.replace(/^http/, "ws"));
  ws.binaryType = "arraybuffer";
  const inbox: (string | ArrayBuffer)[] = [];
  const waiters: ((v: string | ArrayBuffer) => void)[] = [];
  let errored = false;
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<{ code: number; reason: string; wasClean: boolean }>();
  ws.onopen = () => opened.resolve();
  ws.onerror = () => {
    errored = true;
    opened.reject(new Error(`WebSocket to ${url} failed`));
  };
  ws.onclose = (e) => {
    opened.reject(new Error(`WebSocket to ${url} closed before opening (${e.code})`));
    closed.resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
  };
  opened.promise.catch(() => {});
  ws.onmessage = (e) => {
    const w = waiters.shift();
    if (w) w(e.data);
    else inbox.push(e.data);
  };
  const next = () =>
    inbox.length
      ? Promise.resolve(inbox.shift()!)
      : new Promise<string | ArrayBuffer>((resolve) => waiters.push(resolve));
  const nextJson = async <T>() => JSON.parse(String(await next())) as T;
  return {
    ws,
    opened: opened.promise,
    closed: closed.promise,
    errored: () => errored,
    next,
    nextJson,
    async nextOfType<T>(type: string): Promise<T> {
      while (true) {
        const m = await nextJson<{ type: string }>();
        if (m.type === type) return m as T;
      }
    },
    send: (data) => ws.send(data as string),
    close: (code, reason) => ws.close(code, reason),
  };
}
