/**
 * Maps event kinds to the tenant module's handlers, inside the worker.
 * `fetch` is the hot path and is called directly by the bootstrap; every other
 * kind (`scheduled`, `queue`, Durable Object calls, …) gets an adapter here that
 * turns the host's structured-clone payload into what the handler expects.
 * Adding an event kind: one adapter in `ADAPTERS`.
 */
import { scheduledAdapter } from "./events/scheduled.worker.ts";
import { queueAdapter } from "./events/queue.worker.ts";
import { durableObjectAdapter } from "./durable_objects/runner.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** Execution context given to every handler. */
export interface WorkerContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
  props: Record<string, unknown>;
}

export type FetchHandler = (
  request: Request,
  env: Record<string, unknown>,
  ctx: WorkerContext,
) => Response | Promise<Response>;

export type EventHandler = (
  payload: unknown,
  env: Record<string, unknown>,
  ctx: WorkerContext,
) => unknown;

export interface EventHandlers {
  fetch?: FetchHandler;
  [kind: string]: EventHandler | FetchHandler | undefined;
}

/** Builds the handler for one event kind from the tenant's module, or undefined. */
export type EventAdapter = (mod: Any, env: Record<string, unknown>) => EventHandler | undefined;

/** Event kinds other than fetch. */
export const ADAPTERS: Record<string, EventAdapter> = {
  scheduled: scheduledAdapter,
  queue: queueAdapter,
  durable_object: durableObjectAdapter,
};

/** The object whose methods handle events: `export default { fetch }` or a Hono app. */
function entrypoint(mod: Any): Any {
  return mod.default;
}

/** Fills `handlers` from the tenant module. */
export function registerEventHandler(
  handlers: EventHandlers,
  mod: Any,
  env: Record<string, unknown>,
): void {
  const target = entrypoint(mod);
  if (typeof target?.fetch === "function") {
    handlers.fetch = (request, env, ctx) => target.fetch(request, env, ctx);
  }
  for (const [kind, adapt] of Object.entries(ADAPTERS)) {
    const handler = adapt(mod, env);
    if (handler) handlers[kind] = handler;
  }
}
