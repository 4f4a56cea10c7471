/**
 * The validated, normalized configuration (the output of `load_config.ts`).
 * Paths are absolute; every permission key is spelled out; defaults are filled.
 */

import type { CronTriggerConfig } from "../scheduler/cron_config.ts";
import type { QueueConsumerConfig } from "../queues/queue_config.ts";

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

import type { EgressTenantConfig, IsolationLimits } from "../limits/limits_config.ts";

/** `[tenants.<name>.limits]`; the isolation keys are in `control-plane/limits/limits_config.ts`. */
export interface LimitsConfig extends IsolationLimits {
  /** Wall-clock limit per event, ms. */
  timeoutMs: number;
  /**
   * CPU-ish limit per event, ms (0 = none): the worker thread's CPU while the event is in
   * flight, shared among the events in flight. Optional for configs built without the schema.
   */
  cpuMs?: number;
  /** Most warm workers for this tenant. */
  maxWorkers: number;
  /** Concurrent events one worker takes before the pool starts another. */
  maxConcurrencyPerWorker: number;
  /** Workers kept warm while idle; 0 (default) scales an idle tenant to zero. */
  minWorkers: number;
  /** Idle time after which a worker above `minWorkers` stops, ms. */
  idleTimeoutMs: number;
  /**
   * `"auto"` (default): workers in the server process until its workers died twice within 10 s (or one was stopped for memory or CPU), then a
   * cell of its own until its next deploy. `"thread"`: always in the server process (a tenant
   * on the quarantine record still gets a cell). `"cell"`: a child process of its own with a
   * heap cap (control-plane/cells/). Optional for configs built without the schema.
   */
  isolation?: "auto" | "thread" | "cell";
}

import type { RegistryConfig } from "../registry/registry_config.ts";

export interface TenantConfig {
  name: string;
  /** Absolute path of the entry module, or `registry:scope/name@range`. */
  module: string;
  /** Route patterns, as written (`host/path` with `*` wildcards). */
  routes: string[];
  permissions: PermissionsConfig;
  /** Plain values for `env` (strings or JSON). */
  vars: Record<string, unknown>;
  /** KV binding names on `env`. */
  kv: string[];
  limits: LimitsConfig;
  /** `[tenants.<name>.egress]`: private addresses this tenant may reach. */
  egress: EgressTenantConfig;
  /** Cron triggers (`cron = [...]`); see `control-plane/scheduler/cron_config.ts`. */
  cron: CronTriggerConfig[];
  /** Queue producer bindings: env name → queue name (`queues = { JOBS = "jobs" }`). */
  queues: Record<string, string>;
  /** Queues this tenant consumes (`[[tenants.<name>.queue_consumers]]`). */
  queueConsumers: QueueConsumerConfig[];
  /** Durable Object bindings: env name → exported class name (`durable_objects = { C = "Counter" }`). */
  durableObjects: Record<string, string>;
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
  /** `[registry]`: trusted signing keys (the loader always sets it). */
  registry?: RegistryConfig;
  /** Sorted by name. */
  tenants: TenantConfig[];
}
