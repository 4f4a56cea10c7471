/**
 * Which version of a registry artifact each tenant runs: deploy, rollback, history, and the
 * module loader the {@linkcode DeploymentManager} uses at start.
 *
 * - A tenant's active version is the newest row of `tenant_deployments`; at start it
 *   overrides worky.toml's `module`, so a deploy survives restarts.
 * - Every artifact is verified (hashes, size, signature by a trusted key) before a worker
 *   sees it, and its requested permissions and KV bindings must be granted by the tenant's
 *   config. A refused artifact throws and the running version keeps serving.
 * - Deploys of one tenant are serialized; the new Deployment starts (module loaded) before
 *   the swap, and in-flight requests finish on the old one.
 * - Rollback goes to the version the active one replaced (its `previous`); rolling back twice
 *   returns to where you were.
 *
 * @module
 */
import { desc, eq } from "drizzle-orm";
import type { TenantConfig } from "../config/types.ts";
import type { DeploymentManager, LoadedModule } from "../deployments.ts";
import type { Database } from "../storage/database.ts";
import { type TenantDeploymentRow, tenantDeployments } from "../storage/schema_registry.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { Logger } from "../../runtime/logger.ts";
import { type Artifact, loadableCode, verifyArtifact } from "../../runtime/artifact/artifact.ts";
import { artifactId, type Manifest } from "../../runtime/artifact/manifest.ts";
import { bundleModule } from "../../runtime/bundler.ts";
import type { ArtifactStore } from "./artifact_store.ts";
import { parseRef } from "./registry.ts";
import { isRegistrySpec, REGISTRY_PREFIX } from "./registry_config.ts";

/** Options of {@linkcode TenantDeployer}. */
export interface TenantDeployerOptions {
  database: Database;
  artifacts: ArtifactStore;
  trustedKeys: readonly string[];
  logger: Logger;
  /** Run tenants whose module is a local source file (dev). Default true; `serve` passes false. */
  allowUnsigned?: boolean;
  now?: () => number;
  /**
   * The config's tenants, for use without a running server (`worky deploy` without
   * `--remote`): deploys are verified and recorded, and take effect at the next start.
   */
  tenants?: TenantConfig[];
}

/** One line of `worky deployments`. */
export interface DeploymentRecord {
  id: number;
  tenant: string;
  ref: string;
  digest: string;
  action: string;
  previous: string | null;
  createdAt: number;
  actor: string | null;
  active: boolean;
}

const PERMISSION_KEYS = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/** Throws when the manifest asks for a permission or KV binding the tenant's config doesn't grant. */
export function checkGrants(m: Manifest, tenant: TenantConfig): void {
  const missing: string[] = [];
  for (const key of PERMISSION_KEYS) {
    const asked = m.permissions[key];
    const granted = tenant.permissions[key];
    if (asked === undefined || asked === false || (Array.isArray(asked) && asked.length === 0)) {
      continue;
    }
    if (granted === true) continue;
    if (asked === true || !Array.isArray(granted)) {
      missing.push(`${key} ${JSON.stringify(asked)}`);
      continue;
    }
    const lacking = asked.filter((a) => !granted.includes(a));
    if (lacking.length) missing.push(`${key} ${JSON.stringify(lacking)}`);
  }
  const kv = m.bindings.kv.filter((b) => !tenant.kv.includes(b));
  if (kv.length) missing.push(`kv ${JSON.stringify(kv)}`);
  if (missing.length) {
    throw new WorkyError(
      "ERR_PERMISSION_DENIED",
      `artifact ${artifactId(m)} asks for ${
        missing.join(", ")
      }, which tenant "${tenant.name}" does not grant (add them to [tenants.${tenant.name}] in worky.toml)`,
    );
  }
}

export class TenantDeployer {
  readonly #opts: TenantDeployerOptions;
  #deployments?: DeploymentManager;
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(opts: TenantDeployerOptions) {
    this.#opts = opts;
  }

  /** Connects the manager whose tenants this deployer switches. */
  attach(deployments: DeploymentManager): void {
    this.#deployments = deployments;
  }

  /**
   * The {@linkcode ModuleLoader} for the DeploymentManager: the tenant's active deployment
   * if any, else a `registry:` spec, else the local source file (when allowed).
   */
  loadModule = async (config: TenantConfig): Promise<LoadedModule> => {
    const active = await this.active(config.name);
    if (active) {
      const [name, version] = splitRef(active.ref);
      return await this.#load(config, name, version);
    }
    if (isRegistrySpec(config.module)) {
      const ref = parseRef(config.module.slice(REGISTRY_PREFIX.length));
      const version = await this.#opts.artifacts.resolve(ref);
      return await this.#load(config, ref.name, version);
    }
    if (!this.#opts.allowUnsigned) {
      throw new WorkyError(
        "ERR_BUNDLE_TAMPERED",
        `tenant "${config.name}": module ${config.module} is unsigned source; this server runs only signed artifacts (use "registry:scope/name@range" with "worky publish"/"worky pull", or run "worky dev")`,
      );
    }
    this.#opts.logger.log({
      level: "warn",
      msg:
        `tenant "${config.name}" runs UNSIGNED local source ${config.module} (allowed in dev only)`,
    });
    const bundle = await bundleModule(config.module);
    return { code: bundle.code, version: bundle.hash.slice(0, 12), inputs: bundle.inputs };
  };

  /** Reads and verifies `name@version` and checks the tenant grants what it asks for. */
  async #load(config: TenantConfig, name: string, version: string): Promise<LoadedModule> {
    const artifact: Artifact = await this.#opts.artifacts.get(name, version);
    await verifyArtifact(artifact, { trustedKeys: this.#opts.trustedKeys });
    checkGrants(artifact.manifest, config);
    return {
      code: loadableCode(artifact),
      version: `${name}@${version}`,
      inputs: [],
      crons: artifact.manifest.crons,
    };
  }

  /** Serializes work per tenant. */
  async #locked<T>(tenant: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(tenant) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    this.#locks.set(tenant, run);
    try {
      return await run;
    } finally {
      if (this.#locks.get(tenant) === run) this.#locks.delete(tenant);
    }
  }

  #tenant(name: string): TenantConfig {
    const config = this.#deployments
      ? this.#deployments.get(name)?.config
      : this.#opts.tenants?.find((t) => t.name === name);
    if (!config) {
      throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${name}" in this server's config`);
    }
    return config;
  }

  #manager(): DeploymentManager {
    if (!this.#deployments) throw new WorkyError("ERR_INTERNAL", "deployer is not attached");
    return this.#deployments;
  }

  /**
   * Deploys `name@range` (resolved here) to `tenant` and records it. Returns the record.
   *
   * @example
   * ```ts ignore
   * const record = await server.deployer.deploy("shop", "acme/shop@^1.2", "local");
   * console.log(record.ref); // "acme/shop@1.2.3"
   * ```
   */
  deploy(tenant: string, refText: string, actor: string | null = null): Promise<DeploymentRecord> {
    return this.#locked(tenant, async () => {
      const config = this.#tenant(tenant);
      const ref = parseRef(refText);
      const version = await this.#opts.artifacts.resolve(ref);
      return await this.#switch(config, ref.name, version, "deploy", actor);
    });
  }

  /** Returns `tenant` to the version its active one replaced. */
  rollback(tenant: string, actor: string | null = null): Promise<DeploymentRecord> {
    return this.#locked(tenant, async () => {
      const config = this.#tenant(tenant);
      const active = await this.active(tenant);
      if (!active?.previous) {
        throw new WorkyError(
          "ERR_CONFLICT",
          `tenant "${tenant}" has no previous version to roll back to (see "worky deployments ${tenant}")`,
        );
      }
      const [name, version] = splitRef(active.previous);
      return await this.#switch(config, name, version, "rollback", actor);
    });
  }

  async #switch(
    config: TenantConfig,
    name: string,
    version: string,
    action: "deploy" | "rollback",
    actor: string | null,
  ): Promise<DeploymentRecord> {
    const loaded = await this.#load(config, name, version);
    const digest = (await this.#opts.artifacts.get(name, version)).manifest.digest;
    const previous = this.#deployments
      ? this.#deployments.get(config.name)!.current.version
      : (await this.active(config.name))?.ref ?? "";
    // start first (a module that fails to load throws here; nothing changed), then record,
    // then swap: a failed record leaves the old version serving
    const next = this.#deployments
      ? await this.#startOnly(config.name, loaded)
      : { commit: () => {}, abort: async () => {} };
    let row: TenantDeploymentRow;
    try {
      [row] = await this.#opts.database.db.insert(tenantDeployments).values({
        tenant: config.name,
        ref: `${name}@${version}`,
        digest,
        action,
        previous: previous.includes("@") ? previous : null,
        createdAt: (this.#opts.now ?? Date.now)(),
        actor,
      }).returning();
    } catch (err) {
      await next.abort();
      throw err;
    }
    next.commit();
    this.#opts.logger.log({
      level: "info",
      msg: `tenant "${config.name}": ${action} ${row.ref} (was ${previous})`,
    });
    return { ...row, active: true };
  }

  /** Starts a deployment without swapping it in yet. */
  async #startOnly(tenant: string, loaded: LoadedModule) {
    const manager = this.#manager();
    const started = await manager.start(tenant, loaded);
    return {
      commit: () => manager.swap(tenant, started, loaded),
      abort: () => started.drain(0),
    };
  }

  /** The active deployment record of `tenant`, if it was ever deployed. */
  async active(tenant: string): Promise<TenantDeploymentRow | undefined> {
    const rows = await this.#opts.database.db.select().from(tenantDeployments)
      .where(eq(tenantDeployments.tenant, tenant)).orderBy(desc(tenantDeployments.id)).limit(1);
    return rows[0];
  }

  /** Every deploy and rollback of `tenant`, newest first. */
  async history(tenant: string): Promise<DeploymentRecord[]> {
    this.#tenant(tenant);
    const rows = await this.#opts.database.db.select().from(tenantDeployments)
      .where(eq(tenantDeployments.tenant, tenant)).orderBy(desc(tenantDeployments.id));
    return rows.map((r, i) => ({ ...r, active: i === 0 }));
  }
}

function splitRef(ref: string): [string, string] {
  const at = ref.lastIndexOf("@");
  return [ref.slice(0, at), ref.slice(at + 1)];
}
