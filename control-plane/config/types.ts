/**
 * The validated, normalized configuration (the output of `load_config.ts`).
 * Paths are absolute; every permission key is spelled out; defaults are filled.
 */

/** A Deno permission grant: `true` (all), `false` (none) or an allowlist. */
export type PermissionGrant = boolean | string[];

/** Every Deno permission key, spelled out (never omitted, never "inherit"). */
export interface PermissionsConfig {
  read: PermissionGrant;
  write: PermissionGrant;
  net: PermissionGrant;
  env: PermissionGrant;
  run: PermissionGrant;
  ffi: PermissionGrant;
  sys: PermissionGrant;
  import: PermissionGrant;
}

export interface LimitsConfig {
  /** Wall-clock limit per event, ms. */
  timeoutMs: number;
  /** Most warm workers for this tenant. */
  maxWorkers: number;
  /** Concurrent events one worker takes before the pool starts another. */
  maxConcurrencyPerWorker: number;
}

export interface TenantConfig {
  name: string;
  /** Absolute path of the entry module. */
  module: string;
  /** Route patterns, as written (`host/path` with `*` wildcards). */
  routes: string[];
  permissions: PermissionsConfig;
  /** Plain values for `env` (strings or JSON). */
  vars: Record<string, unknown>;
  /** KV binding names on `env`. */
  kv: string[];
  limits: LimitsConfig;
}

export interface ServerConfig {
  hostname: string;
  port: number;
  /** Absolute path of the state folder (default `<config dir>/.worky`). */
  dataDir: string;
  /** libSQL URL; `WORKY_DB_URL` wins; default `file:<dataDir>/worky.db`. */
  dbUrl: string;
}

export interface WorkyConfig {
  /** Absolute path of the config file, or a label like `<inline>`. */
  path: string;
  /** Folder relative paths are resolved against. */
  dir: string;
  server: ServerConfig;
  /** Sorted by name. */
  tenants: TenantConfig[];
}
