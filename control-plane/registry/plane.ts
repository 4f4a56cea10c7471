/**
 * Wires the registry side of a control plane: token store, registry (DB + blobs under
 * `<data_dir>/registry/blobs`), artifact store (plus the pull cache
 * `<data_dir>/artifacts`), tenant deployer, and their HTTP routes.
 *
 * @module
 */
import { join } from "node:path";
import { Hono } from "hono";
import type { WorkyConfig } from "../config/types.ts";
import type { Database } from "../storage/database.ts";
import type { Logger } from "../../runtime/logger.ts";
import { TokenStore } from "../auth/tokens.ts";
import { Registry } from "./registry.ts";
import { ArtifactStore } from "./artifact_store.ts";
import { TenantDeployer } from "./deployer.ts";
import { registryRoutes } from "./routes.ts";
import { deployRoutes } from "../admin/deploy_routes.ts";

/** Options of {@linkcode createRegistryPlane}. */
export interface RegistryPlaneOptions {
  config: WorkyConfig;
  database: Database;
  logger: Logger;
  /** Extra read-only artifact folders searched after the pull cache (e.g. a compiled binary's). */
  artifactDirs?: string[];
  /** Run unsigned local source modules (dev). Default true. */
  allowUnsigned?: boolean;
}

/** The pieces {@linkcode createRegistryPlane} wires. */
export interface RegistryPlane {
  tokens: TokenStore;
  registry: Registry;
  artifacts: ArtifactStore;
  deployer: TenantDeployer;
  /** Mount at `/_worky`: serves `/registry/*` and `/api/*`. */
  routes: Hono;
}

/** Where `worky pull` stores artifacts for a config. */
export function pullCacheDir(config: WorkyConfig): string {
  return join(config.server.dataDir, "artifacts");
}

/**
 * Creates the registry plane of one control plane.
 *
 * @example
 * ```ts ignore
 * const plane = createRegistryPlane({ config, database, logger });
 * const deployments = new DeploymentManager(runtime, { loadModule: plane.deployer.loadModule });
 * plane.deployer.attach(deployments);
 * ```
 */
export function createRegistryPlane(opts: RegistryPlaneOptions): RegistryPlane {
  const { config, database } = opts;
  const tokens = new TokenStore(database);
  const registry = new Registry(database, join(config.server.dataDir, "registry", "blobs"));
  const artifacts = new ArtifactStore({
    registry,
    cacheDirs: [pullCacheDir(config), ...(opts.artifactDirs ?? [])],
  });
  const deployer = new TenantDeployer({
    database,
    artifacts,
    trustedKeys: config.registry?.trustedKeys ?? [],
    logger: opts.logger,
    allowUnsigned: opts.allowUnsigned ?? true,
    tenants: config.tenants,
  });
  const routes = new Hono()
    .route("/registry", registryRoutes({ registry, tokens }))
    .route("/api", deployRoutes({ deployer, tokens }));
  return { tokens, registry, artifacts, deployer, routes };
}
