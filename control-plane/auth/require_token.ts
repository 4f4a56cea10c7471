/**
 * Hono middleware: requires `Authorization: Bearer <token>` with a scope; the verified
 * token is put on the context as `token`.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { WorkyError } from "../../runtime/errors.ts";
import { allows, type TokenInfo, type TokenScope, type TokenStore } from "./tokens.ts";

/** Context variables set by {@linkcode requireToken}. */
export type TokenVariables = { token: TokenInfo };

/** Options of {@linkcode requireToken}. */
export interface RequireTokenOptions {
  tokens: TokenStore;
  /** The scope the route needs (`admin` tokens pass any). */
  scope: TokenScope;
}

/**
 * A middleware that answers 401 without a valid token and 403 with a token of another scope.
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * const app = new Hono<{ Variables: TokenVariables }>();
 * app.post("/publish", requireToken({ tokens, scope: "publish" }), (c) => c.json(c.var.token));
 * ```
 */
export function requireToken(
  opts: RequireTokenOptions,
): MiddlewareHandler<{ Variables: TokenVariables }> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new WorkyError(
        "ERR_UNAUTHORIZED",
        `${c.req.method} ${c.req.path} needs an API token (Authorization: Bearer <token>; create one with "worky token create")`,
      );
    }
    const token = await opts.tokens.verify(match[1]);
    if (!token) {
      throw new WorkyError("ERR_UNAUTHORIZED", "the API token is unknown or revoked");
    }
    if (!allows(token, opts.scope)) {
      throw new WorkyError(
        "ERR_FORBIDDEN",
        `token ${token.id} has scope "${token.scope}"; ${c.req.method} ${c.req.path} needs "${opts.scope}"`,
      );
    }
    c.set("token", token);
    await next();
  };
}
