/**
 * Types for tenant authors: the module shape and the execution context, as
 * in Cloudflare Workers. Import them with `import type` so nothing of the
 * host ends up in a bundle.
 */

/** Passed to every handler. */
export interface ExecutionContext {
  /** Keeps the event alive until `promise` settles, after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
  /** Accepted for compatibility; Worky has no origin to fall back to. */
  passThroughOnException(): void;
  props: Record<string, unknown>;
}

/** The `fetch` handler. */
export type FetchHandler<Env = Record<string, unknown>> = (
  request: Request,
  env: Env,
  ctx: ExecutionContext,
) => Response | Promise<Response>;

/**
 * What a tenant module exports as default: an object with handlers, or
 * anything with a `fetch` method (a Hono app).
 */
export interface ExportedHandler<Env = Record<string, unknown>> {
  fetch?: FetchHandler<Env>;
  [handler: string]: unknown;
}
