/**
 * What tenant code imports at run time: `import { DurableObject } from "worky"`
 * or `from "cloudflare:workers"`. The bundler maps both module ids to this
 * file, so the class a tenant extends is bundled into its own module, and
 * code written for Cloudflare runs unmodified.
 *
 * Worker code: no imports of host modules.
 *
 * @module
 */
import type { DurableObjectState } from "./bindings/durable_object/types.ts";

/**
 * The base class of a Durable Object: keeps `ctx` (its state and storage) and
 * `env` (the tenant's bindings).
 *
 * @example
 * ```ts
 * import { DurableObject } from "./tenant_api.worker.ts";
 * export class Counter extends DurableObject {
 *   async increment(by = 1): Promise<number> {
 *     const n = ((await this.ctx.storage.get<number>("n")) ?? 0) + by;
 *     await this.ctx.storage.put("n", n);
 *     return n;
 *   }
 * }
 * ```
 */
export class DurableObject<Env = Record<string, unknown>> {
  protected ctx: DurableObjectState;
  protected env: Env;
  constructor(ctx: DurableObjectState, env: Env) {
    this.ctx = ctx;
    this.env = env;
  }
}

/**
 * The base class of a class-style entrypoint (`export default class extends
 * WorkerEntrypoint { fetch(request) { … } }`): keeps `ctx` and `env`.
 *
 * @example
 * ```ts
 * import { WorkerEntrypoint } from "./tenant_api.worker.ts";
 * export class Api extends WorkerEntrypoint {
 *   fetch(): Response {
 *     return new Response("ok");
 *   }
 * }
 * ```
 */
export class WorkerEntrypoint<Env = Record<string, unknown>> {
  protected ctx: unknown;
  protected env: Env;
  constructor(ctx: unknown, env: Env) {
    this.ctx = ctx;
    this.env = env;
  }
}
