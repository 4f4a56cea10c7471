/**
 * Tables of the module registry, API tokens and the deployment history.
 *
 * - `registry_versions`: one row per published `name@version`. The primary key is what makes
 *   versions immutable: of two concurrent publishes of one version exactly one insert
 *   succeeds. The files themselves are content-addressed blobs on disk (`blob_store.ts`).
 * - `registry_tags`: dist-tags (`latest`, …) → a version; they move.
 * - `api_tokens`: only the sha256 of a token is stored; `scope` is publish | deploy | admin,
 *   `tenant` limits a token to one tenant (null: any).
 * - `tenant_deployments`: every deploy and rollback of a tenant, newest last; the newest row
 *   of a tenant is its active version (consulted at start, overriding worky.toml's module).
 *
 * @module
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Published versions. */
export const registryVersions = sqliteTable("registry_versions", {
  name: text("name").notNull(),
  version: text("version").notNull(),
  /** manifest.json as published (signed). */
  manifest: text("manifest").notNull(),
  digest: text("digest").notNull(),
  size: integer("size").notNull(),
  /** The signing key, `ed25519:…`. */
  signer: text("signer").notNull(),
  publishedAt: integer("published_at").notNull(),
  /** Token id that published it. */
  publishedBy: text("published_by"),
}, (t) => [primaryKey({ columns: [t.name, t.version] })]);

/** Dist-tags. */
export const registryTags = sqliteTable("registry_tags", {
  name: text("name").notNull(),
  tag: text("tag").notNull(),
  version: text("version").notNull(),
  updatedAt: integer("updated_at").notNull(),
}, (t) => [primaryKey({ columns: [t.name, t.tag] })]);

/** API tokens (hashes only). */
export const apiTokens = sqliteTable("api_tokens", {
  id: text("id").primaryKey(),
  /** sha256 hex of the whole token text. */
  hash: text("hash").notNull().unique(),
  scope: text("scope").notNull(),
  tenant: text("tenant"),
  description: text("description"),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
});

/** Deploy/rollback history; the newest row per tenant is active. */
export const tenantDeployments = sqliteTable("tenant_deployments", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  tenant: text("tenant").notNull(),
  /** `name@version` */
  ref: text("ref").notNull(),
  digest: text("digest").notNull(),
  /** "deploy" | "rollback" */
  action: text("action").notNull(),
  /** The ref this one replaced (null for a tenant's first). */
  previous: text("previous"),
  createdAt: integer("created_at").notNull(),
  /** Token id (remote) or "local". */
  actor: text("actor"),
}, (t) => [index("tenant_deployments_tenant_idx").on(t.tenant, t.id)]);

/** A row of {@link tenantDeployments}. */
export type TenantDeploymentRow = typeof tenantDeployments.$inferSelect;
