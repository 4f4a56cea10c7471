/**
 * API tokens: created once (the text is shown to the caller and never stored), verified by
 * the sha256 of the whole text, listed, revoked.
 *
 * A token reads `wky_<id>_<secret>`; `id` (12 hex digits) names it in listings and
 * revocations. Scopes: `publish` (registry uploads), `deploy` (switch a tenant's version),
 * `admin` (everything). A token with a `tenant` acts for that tenant only.
 *
 * @module
 */
import { and, eq, isNull } from "drizzle-orm";
import type { Database } from "../storage/database.ts";
import { apiTokens } from "../storage/schema_registry.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { sha256Hex } from "../../runtime/artifact/_encoding.ts";

/** What a token may do. */
export type TokenScope = "publish" | "deploy" | "admin";
/** Every scope, for validation and help. */
export const TOKEN_SCOPES: readonly TokenScope[] = ["publish", "deploy", "admin"];

/** A verified (or listed) token, without its secret. */
export interface TokenInfo {
  id: string;
  scope: TokenScope;
  /** The one tenant it acts for; null: any tenant. */
  tenant: string | null;
  description: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** True when `token` may act in `scope` (admin may do everything). */
export function allows(token: TokenInfo, scope: TokenScope): boolean {
  return token.scope === "admin" || token.scope === scope;
}

/** True when `token` may act for `tenant`. */
export function actsFor(token: TokenInfo, tenant: string): boolean {
  return token.tenant === null || token.tenant === tenant;
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Token storage over the control plane's database. */
export class TokenStore {
  readonly #database: Database;
  readonly #now: () => number;

  constructor(database: Database, now: () => number = Date.now) {
    this.#database = database;
    this.#now = now;
  }

  /**
   * Creates a token and returns its text (the only time it exists in clear) and its info.
   *
   * @example
   * ```ts ignore
   * const { token, info } = await new TokenStore(db).create({ scope: "publish", tenant: "acme" });
   * console.log(token.startsWith("wky_"), info.id);
   * ```
   */
  async create(
    opts: { scope: TokenScope; tenant?: string | null; description?: string | null },
  ): Promise<{ token: string; info: TokenInfo }> {
    if (!TOKEN_SCOPES.includes(opts.scope)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `"${opts.scope}" is not a token scope (expected ${TOKEN_SCOPES.join(", ")})`,
      );
    }
    const id = randomHex(6);
    const token = `wky_${id}_${randomHex(24)}`;
    const info: TokenInfo = {
      id,
      scope: opts.scope,
      tenant: opts.tenant ?? null,
      description: opts.description ?? null,
      createdAt: this.#now(),
      revokedAt: null,
    };
    await this.#database.db.insert(apiTokens).values({ ...info, hash: await sha256Hex(token) });
    return { token, info };
  }

  /** The token's info if it exists and isn't revoked; otherwise undefined. */
  async verify(token: string): Promise<TokenInfo | undefined> {
    if (!/^wky_[0-9a-f]{12}_[0-9a-f]{48}$/.test(token)) return undefined;
    const rows = await this.#database.db.select().from(apiTokens).where(
      and(eq(apiTokens.hash, await sha256Hex(token)), isNull(apiTokens.revokedAt)),
    );
    return rows[0] ? toInfo(rows[0]) : undefined;
  }

  /** Every token, revoked ones included, oldest first. */
  async list(): Promise<TokenInfo[]> {
    const rows = await this.#database.db.select().from(apiTokens).orderBy(apiTokens.createdAt);
    return rows.map(toInfo);
  }

  /** Revokes a token by id; throws ERR_NOT_FOUND for an unknown or already revoked id. */
  async revoke(id: string): Promise<void> {
    const result = await this.#database.db.update(apiTokens).set({ revokedAt: this.#now() })
      .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)));
    if (result.rowsAffected === 0) {
      throw new WorkyError(
        "ERR_NOT_FOUND",
        `no active token with id "${id}" (see "worky token list")`,
      );
    }
  }
}

function toInfo(row: typeof apiTokens.$inferSelect): TokenInfo {
  return {
    id: row.id,
    scope: row.scope as TokenScope,
    tenant: row.tenant,
    description: row.description,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}
