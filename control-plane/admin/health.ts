/**
 * `GET /_worky/health`: liveness plus a summary of what runs.
 */
import { Hono } from "hono";
import type { DeploymentManager } from "../deployments.ts";

export function healthRoutes(deployments: DeploymentManager, startedAt: number) {
  return new Hono().get("/health", (c) =>
    c.json({
      status: "ok",
      uptimeMs: Date.now() - startedAt,
      tenants: deployments.list().map((s) => s.current.stats()),
    }));
}
