/**
 * The `Request` a tenant's `fetch()` receives, built lazily.
 *
 * Constructing a real `Request` in the worker was the largest single cost of
 * a relayed request (measured on Deno 2.9.6 with a minimal two-thread relay:
 * 52k req/s with `new Request(url, { method, headers })` per request, 76k
 * without). Most handlers read only `url`, `method` and a few headers, which
 * this object answers from the values the host sent. Everything else (the
 * body, `clone()`, `signal`, passing it to `fetch()` or `new Request()`)
 * builds the real Request once, on first use, and works on that.
 *
 * How it stays a real Request to Deno: its prototype chain includes
 * `Request.prototype` (so `instanceof Request` holds and the native getters and
 * methods apply), and the Request's internal slots (own symbol-keyed
 * properties of a Request instance, read once at startup) are accessors here
 * that forward to the real Request. Native code that reads a slot (the brand
 * check of `clone()`, `fetch(request)`, `new Request(request)`) therefore
 * builds and uses the real one.
 *
 * Headers are immutable, as on Cloudflare Workers and in `Deno.serve`:
 * `request.headers.set()` throws; copy them (`new Headers(request.headers)`)
 * or derive a request (`new Request(request, { headers })`) to change them.
 *
 * Imports nothing: runs inside tenant workers.
 *
 * @module
 */

const NativeRequest = globalThis.Request;
const NativeHeaders = globalThis.Headers;

/** The Request's internal slots, as Deno 2.x stores them (own symbol properties). */
const SLOTS: readonly symbol[] = Object.getOwnPropertySymbols(
  new NativeRequest("http://worky.invalid/", { method: "POST", body: "x" }),
);

function immutable(): TypeError {
  return new TypeError(
    "Can't modify immutable headers: a request's headers are read-only; copy them with " +
      "new Headers(request.headers) or derive a request with new Request(request, { headers })",
  );
}

/** A request's headers: a real `Headers` whose mutators throw. */
class ImmutableHeaders extends NativeHeaders {
  override append(): void {
    throw immutable();
  }
  override set(): void {
    throw immutable();
  }
  override delete(): void {
    throw immutable();
  }
}
Object.defineProperty(ImmutableHeaders.prototype, "constructor", { value: NativeHeaders });

class IncomingRequest {
  readonly #url: string;
  readonly #method: string;
  readonly #pairs: [string, string][];
  readonly #body: ReadableStream<Uint8Array> | null;
  #headers: Headers | undefined;
  #real: Request | undefined;

  constructor(
    url: string,
    method: string,
    pairs: [string, string][],
    body: ReadableStream<Uint8Array> | null,
  ) {
    this.#url = url;
    this.#method = method;
    this.#pairs = pairs;
    this.#body = body;
  }

  get url(): string {
    return this.#url;
  }

  get method(): string {
    return this.#method;
  }

  get headers(): Headers {
    return this.#headers ??= new ImmutableHeaders(this.#pairs);
  }

  /** The real Request, built on first need. */
  #materialize(): Request {
    return this.#real ??= new NativeRequest(this.#url, {
      method: this.#method,
      headers: this.#pairs, // pairs: repeated names (cookie) stay separate entries
      body: this.#body,
      // @ts-ignore: duplex is needed for streaming request bodies
      duplex: this.#body ? "half" : undefined,
    });
  }

  static {
    for (const slot of SLOTS) {
      Object.defineProperty(IncomingRequest.prototype, slot, {
        get(this: IncomingRequest) {
          return (this.#materialize() as unknown as Record<symbol, unknown>)[slot];
        },
        set(this: IncomingRequest, value: unknown) {
          (this.#materialize() as unknown as Record<symbol, unknown>)[slot] = value;
        },
        configurable: true,
      });
    }
  }
}
Object.setPrototypeOf(IncomingRequest.prototype, NativeRequest.prototype);
Object.defineProperty(IncomingRequest.prototype, "constructor", { value: NativeRequest });

/**
 * The request a tenant's `fetch(request, env, ctx)` gets: `url`, `method` and
 * `headers` come straight from what the host sent; anything else builds the
 * real Request on first use.
 *
 * @example
 * ```ts
 * import { incomingRequest } from "./incoming_request.worker.ts";
 * const req = incomingRequest("http://a.test/x", "GET", [["accept", "text/html"]], null);
 * console.log(req instanceof Request, req.headers.get("accept")); // true text/html
 * ```
 */
export function incomingRequest(
  url: string,
  method: string,
  headers: [string, string][],
  body: ReadableStream<Uint8Array> | null,
): Request {
  return new IncomingRequest(url, method, headers, body) as unknown as Request;
}
