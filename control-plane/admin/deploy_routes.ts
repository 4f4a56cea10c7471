/**
 * The admin API for deployments, mounted under `/_worky/api`:
 *
 * | method | path                              | token scope | what                               |
 * | ------ | --------------------------------- | ----------- | ---------------------------------- |
 * | POST   | /tenants/:tenant/deploy           | deploy      | `{ "ref": "acme/api@^1.2" }`       |
 * | POST   | /tenants/:tenant/rollback         | deploy      | back to the previous version       |
 * | GET    | /tenants/:tenant/deployments      | deploy      | history, newest first              |
 *
 * A token scoped to one tenant acts for that tenant only (403 otherwise).
 *
 * @module
 */
import { Hono } from "hono";
import { WorkyError } from "../../runtime/errors.ts";
import { requireToken, type TokenVariables } from "../auth/require_token.ts";
import { actsFor, type TokenStore } from "../auth/tokens.ts";
import type { TenantDeployer } from "../registry/deployer.ts";

/**
 * The deployment routes (a Hono app to mount at `/api`).
 *
 * @example
 * ```ts ignore
 * admin.route("/api", deployRoutes({ deployer, tokens }));
 * ```
 */
export function deployRoutes(opts: { deployer: TenantDeployer; tokens: TokenStore }) {
  const { deployer, tokens } = opts;
  const app = new Hono<{ Variables: TokenVariables }>();
  app.use("/tenants/:tenant/*", requireToken({ tokens, scope: "deploy" }), async (c, next) => {
    const tenant = c.req.param("tenant") ?? "";
    if (!actsFor(c.var.token, tenant)) {
      throw new WorkyError(
        "ERR_FORBIDDEN",
        `token ${c.var.token.id} acts for tenant "${c.var.token.tenant}", not "${tenant}"`,
      );
    }
    await next();
  });
  app.post("/tenants/:tenant/deploy", async (c) => {
    const body = await c.req.json().catch(() => ({})) as { ref?: unknown };
    if (typeof body.ref !== "string") {
      throw new WorkyError("ERR_BAD_REQUEST", `body must be {"ref": "scope/name@version"}`);
    }
    return c.json(await deployer.deploy(c.req.param("tenant"), body.ref, c.var.token.id));
  });
  app.post(
    "/tenants/:tenant/rollback",
    async (c) => c.json(await deployer.rollback(c.req.param("tenant"), c.var.token.id)),
  );
  app.get(
    "/tenants/:tenant/deployments",
    async (c) => c.json({ deployments: await deployer.history(c.req.param("tenant")) }),
  );
  return app;
}
