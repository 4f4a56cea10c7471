/**
 * The `scheduled` event adapter (runs inside tenant workers): turns the host's
 * `{ cron, scheduledTime }` payload into a Workers `ScheduledController` and
 * calls the module's `scheduled(controller, env, ctx)`.
 *
 * @module
 */
import type { EventAdapter } from "../events.worker.ts";

/** What the host sends for a cron run. */
export interface ScheduledPayload {
  /** The trigger's expression, as configured. */
  cron: string;
  /** The time the run was scheduled for, ms since the epoch. */
  scheduledTime: number;
}

/** What the handler's run reports back to the host. */
export interface ScheduledResult {
  /** The handler called `controller.noRetry()`. */
  noRetry: boolean;
}

/**
 * The controller a `scheduled()` handler gets, as on Cloudflare Workers.
 *
 * @example
 * ```ts
 * import type { ScheduledController } from "./scheduled.worker.ts";
 * export default {
 *   scheduled(controller: ScheduledController) {
 *     console.log(controller.cron, new Date(controller.scheduledTime).toISOString());
 *   },
 * };
 * ```
 */
export interface ScheduledController {
  readonly cron: string;
  readonly scheduledTime: number;
  readonly type: "scheduled";
  /** Asks the platform not to retry this run if it fails. */
  noRetry(): void;
}

/**
 * Builds the `scheduled` event handler from a tenant module, or undefined when
 * the module has no `scheduled` export.
 *
 * @example
 * ```ts
 * import { scheduledAdapter } from "./scheduled.worker.ts";
 * const handler = scheduledAdapter({ default: { scheduled: (c: { cron: string }) => c.cron } }, {});
 * console.log(typeof handler); // "function"
 * ```
 */
// deno-lint-ignore no-explicit-any
export const scheduledAdapter: EventAdapter = (mod: any) => {
  const target = mod?.default;
  if (typeof target?.scheduled !== "function") return undefined;
  return async (payload, env, ctx): Promise<ScheduledResult> => {
    const p = payload as ScheduledPayload;
    let noRetry = false;
    const controller: ScheduledController = Object.freeze({
      cron: String(p.cron),
      scheduledTime: Number(p.scheduledTime),
      type: "scheduled" as const,
      noRetry() {
        noRetry = true;
      },
    });
    await target.scheduled(controller, env, ctx);
    return { noRetry };
  };
};
