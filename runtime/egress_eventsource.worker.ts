/**
 * Inside a tenant worker: `EventSource` on the guarded `fetch` (part of
 * `egress.worker.ts`). Deno's own EventSource calls its internal fetch, past
 * the global one, so it reached loopback addresses unchecked (found by the
 * escape suite, Deno 2.9.6) and would dial a second resolution of the name.
 * This one follows the WHATWG "server-sent events" processing model:
 * `text/event-stream` parsing, `event`/`data`/`id`/`retry` fields, reconnection
 * with `Last-Event-ID`, and failure (no reconnection) on a non-200 status or
 * another content type.
 *
 * Imports nothing but web APIs.
 */

// deno-lint-ignore no-explicit-any
type Any = any;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;
/** Reconnection delay until the server sends `retry:` (ms). */
const DEFAULT_RETRY_MS = 3000;

/** Builds the EventSource class on `fetchFn` (the guarded fetch). */
export function guardedEventSource(
  fetchFn: (input: string, init: RequestInit) => Promise<Response>,
): typeof EventSource {
  class GuardedEventSource extends EventTarget {
    static readonly CONNECTING = CONNECTING;
    static readonly OPEN = OPEN;
    static readonly CLOSED = CLOSED;
    readonly CONNECTING = CONNECTING;
    readonly OPEN = OPEN;
    readonly CLOSED = CLOSED;
    readonly url: string;
    readonly withCredentials: boolean;
    onopen: ((e: Event) => void) | null = null;
    onmessage: ((e: MessageEvent) => void) | null = null;
    onerror: ((e: Event) => void) | null = null;
    #state = CONNECTING;
    #abort = new AbortController();
    #lastEventId = "";
    #retryMs = DEFAULT_RETRY_MS;
    #timer: ReturnType<typeof setTimeout> | undefined;

    constructor(url: string | URL, init?: EventSourceInit) {
      super();
      let parsed: URL;
      try {
        parsed = new URL(String(url), (globalThis as Any).location?.href);
      } catch {
        throw new DOMException(`"${url}" is not a valid URL`, "SyntaxError");
      }
      this.url = parsed.href;
      this.withCredentials = Boolean(init?.withCredentials);
      queueMicrotask(() => this.#connect());
    }

    get readyState(): number {
      return this.#state;
    }

    close(): void {
      this.#state = CLOSED;
      clearTimeout(this.#timer);
      this.#abort.abort();
    }

    #dispatch(e: Event) {
      const handler = (this as Any)[`on${e.type}`];
      if (typeof handler === "function") handler.call(this, e);
      this.dispatchEvent(e);
    }

    /** A fatal error: no reconnection. */
    #fail(message: string) {
      if (this.#state === CLOSED) return;
      this.#state = CLOSED;
      this.#dispatch(new ErrorEvent("error", { message }));
    }

    #reconnect(message: string) {
      if (this.#state === CLOSED) return;
      this.#state = CONNECTING;
      this.#dispatch(new ErrorEvent("error", { message }));
      if (this.#state !== CONNECTING) return; // closed by the handler
      this.#timer = setTimeout(() => this.#connect(), this.#retryMs);
    }

    async #connect() {
      if (this.#state === CLOSED) return;
      const headers: Record<string, string> = {
        accept: "text/event-stream",
        "cache-control": "no-store",
      };
      if (this.#lastEventId) headers["last-event-id"] = this.#lastEventId;
      let res: Response;
      try {
        res = await fetchFn(this.url, {
          headers,
          cache: "no-store",
          credentials: this.withCredentials ? "include" : "same-origin",
          signal: this.#abort.signal,
        });
      } catch (err) {
        const message = `EventSource ${this.url}: ${(err as Error)?.message ?? err}`;
        // a refusal (egress, permission, subrequest limit) will not change by retrying
        const refused = (err as Any)?.code?.startsWith?.("ERR_") ||
          (err as Any)?.name === "NotCapable";
        if (refused) this.#fail(message);
        else this.#reconnect(message);
        return;
      }
      const type = res.headers.get("content-type") ?? "";
      if (res.status !== 200 || !/^text\/event-stream\b/i.test(type)) {
        await res.body?.cancel();
        this.#fail(`EventSource ${this.url}: status ${res.status}, content-type "${type}"`);
        return;
      }
      if (this.#state === CLOSED) {
        await res.body?.cancel();
        return;
      }
      this.#state = OPEN;
      this.#dispatch(new Event("open"));
      try {
        await this.#read(res.body!, new URL(res.url || this.url).origin);
      } catch (err) {
        if (this.#state === CLOSED) return;
        this.#reconnect(`EventSource ${this.url}: ${(err as Error)?.message ?? err}`);
        return;
      }
      this.#reconnect(`EventSource ${this.url}: the stream ended`);
    }

    async #read(body: ReadableStream<Uint8Array>, origin: string) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let data = "";
      let event = "";
      let first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#state === CLOSED) return;
        buffer += first ? value.replace(/^\uFEFF/, "") : value;
        first = false;
        // a trailing "\r" may be half of "\r\n": keep it for the next chunk
        const lines = buffer.split(/\r\n|\r(?!$)|\n/);
        buffer = lines.pop()!;
        for (const line of lines) {
          if (line === "") {
            if (data !== "") {
              const e = new MessageEvent(event || "message", {
                data: data.endsWith("\n") ? data.slice(0, -1) : data,
                origin,
                lastEventId: this.#lastEventId,
              });
              if (this.#state !== CLOSED) this.#dispatch(e);
            }
            data = "";
            event = "";
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "data") data += v + "\n";
          else if (field === "event") event = v;
          else if (field === "id" && !v.includes("\0")) this.#lastEventId = v;
          else if (field === "retry" && /^\d+$/.test(v)) this.#retryMs = Number(v);
        }
      }
    }
  }
  return GuardedEventSource as unknown as typeof EventSource;
}
