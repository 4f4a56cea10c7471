/**
 * `GET /__scheduled?cron=…` in `worky dev`: Cloudflare's local testing route.
 * Runs the tenant's `scheduled()` now and answers with the recorded run.
 * The tenant is `?tenant=`, else the one whose route matches the request's
 * Host and path, else the only tenant with cron triggers.
 *
 * @module
 */
import type { DeploymentManager } from "../deployments.ts";
import { splitUrl } from "../ingress.ts";
import { errorResponse } from "../http/error_response.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { CronScheduler } from "./cron_scheduler.ts";

/** The path of the route. */
export const DEV_SCHEDULED_PATH = "/__scheduled";

/**
 * Builds the handler of the dev route.
 *
 * @example
 * ```ts
 * import { devScheduledRoute } from "./dev_scheduled_route.ts";
 * // const handle = devScheduledRoute(scheduler.cron, deployments);
 * // await handle(new Request("http://reports.localhost:8787/__scheduled?cron=*+*+*+*+*"));
 * console.log(typeof devScheduledRoute); // "function"
 * ```
 */
export function devScheduledRoute(cron: CronScheduler, deployments: DeploymentManager) {
  return async (request: Request): Promise<Response> => {
    const requestId = `cron-${crypto.randomUUID()}`;
    try {
      const url = new URL(request.url);
      const schedule = url.searchParams.get("cron") ?? undefined;
      let tenant = url.searchParams.get("tenant") ?? undefined;
      if (tenant === undefined) {
        const { host, path } = splitUrl(request.url);
        tenant = deployments.route(host, path)?.config.name;
      }
      if (tenant === undefined) {
        const withCron = deployments.list().filter((s) => s.config.cron?.length);
        if (withCron.length === 1) tenant = withCron[0].config.name;
        else {
          throw new WorkyError(
            "ERR_BAD_REQUEST",
            `${DEV_SCHEDULED_PATH}: say which tenant with ?tenant=<name> (tenants: ${
              deployments.list().map((s) => s.config.name).join(", ")
            })`,
          );
        }
      }
      const run = await cron.runNow(tenant, schedule, "dev", requestId);
      return Response.json(run, { status: run.outcome === "ok" ? 200 : 500 });
    } catch (err) {
      return errorResponse(err, requestId);
    }
  };
}
