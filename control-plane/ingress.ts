/**
 * The hot path: Host + path → tenant deployment → response. No URL object,
 * no JSON, no await chain beyond the tenant's own reply.
 */
import { type DeploymentManager, onCurrent } from "./deployments.ts";
import { errorResponse } from "./http/error_response.ts";
import { newRequestId } from "./http/request_id.ts";
import { WorkyError } from "../runtime/errors.ts";
import type { Logger } from "../runtime/logger.ts";
import type { TenantGuard } from "./limits/tenant_guard.ts";

/** Splits an absolute URL into host (with port) and path (without query). */
export function splitUrl(url: string): { host: string; path: string } {
  const start = url.indexOf("//") + 2;
  let slash = url.indexOf("/", start);
  if (slash < 0) slash = url.length;
  const q = url.indexOf("?", slash);
  return {
    host: url.slice(start, slash),
    path: q < 0 ? url.slice(slash) || "/" : url.slice(slash, q),
  };
}

/**
 * The tenant traffic handler. `host` and `path` come from {@link splitUrl}, which the
 * server's handler already ran to tell admin routes from tenant traffic.
 */
export function createIngress(deployments: DeploymentManager, logger: Logger, guard: TenantGuard) {
  return function ingress(
    request: Request,
    host: string,
    path: string,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response {
    const requestId = newRequestId();
    const slot = deployments.route(host, path);
    if (!slot) {
      return errorResponse(
        new WorkyError("ERR_NO_ROUTE", `no tenant route matches "${host}${path}"`),
        requestId,
      );
    }
    // limits (size, rate, concurrency): control-plane/limits/tenant_guard.ts
    const res = guard(
      slot.config.name,
      slot.config.limits,
      request,
      (info?.remoteAddr as Deno.NetAddr | undefined)?.hostname ?? "",
      requestId,
      (req, headers) => onCurrent(slot, (d) => d.fetch(req, requestId, headers)),
    );
    if (res instanceof Response) return res;
    return res.catch((err) => {
      const e = WorkyError.from(err);
      logger.log({
        level: e.isUserError ? "info" : "error",
        msg: e.message,
        code: e.code,
        tenant: slot.config.name,
        requestId,
      });
      return errorResponse(e, requestId);
    });
  };
}
