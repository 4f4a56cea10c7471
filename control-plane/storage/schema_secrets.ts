/**
 * Tenant secrets, encrypted at rest (AES-256-GCM; see
 * `control-plane/secrets/secret_store.ts`). The value is never stored in
 * clear; the additional data binds each ciphertext to its tenant and name, so
 * a row copied to another tenant does not decrypt.
 *
 * @module
 */
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { bytes } from "./schema.ts";

/**
 * One secret of one tenant.
 *
 * @example
 * ```ts
 * import { tenantSecrets } from "./schema_secrets.ts";
 * console.log(tenantSecrets.ciphertext.name); // "ciphertext"
 * ```
 */
export const tenantSecrets = sqliteTable("tenant_secrets", {
  tenant: text("tenant").notNull(),
  name: text("name").notNull(),
  /** 12-byte AES-GCM nonce, fresh per write. */
  iv: bytes("iv").notNull(),
  /** AES-GCM ciphertext and tag of the UTF-8 value. */
  ciphertext: bytes("ciphertext").notNull(),
  /** Which key encrypted it (first 8 hex chars of SHA-256 of the raw key). */
  keyId: text("key_id").notNull(),
  updatedAt: integer("updated_at").notNull(),
}, (t) => [primaryKey({ columns: [t.tenant, t.name] })]);
