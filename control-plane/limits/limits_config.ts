/**
 * The isolation keys of `worky.toml`: extra `[tenants.<name>.limits]` keys and
 * the `[tenants.<name>.egress]` table. Spread into `_schema.ts`'s schemas.
 *
 * ```toml
 * [tenants.shop.limits]
 * memory_mb = 128                 # soft heap limit per worker; over it the worker is retired (503)
 * subrequests = 1000              # fetch/connect calls per event
 * max_concurrent_requests = 256   # in flight for the tenant; excess waits up to queue_ms, then 503
 * queue_ms = 1000
 * max_body_bytes = 104857600      # request body (413)
 * max_header_bytes = 32768        # request line + headers (431)
 * requests_per_second = 0         # tenant-wide rate limit (429), 0 = off
 * requests_per_second_per_ip = 0  # per client IP (429), 0 = off
 *
 * [tenants.shop.egress]
 * allow_private = ["10.1.0.0/16", "db.internal:5432"]   # private addresses this tenant may reach
 * ```
 *
 * @module
 */
import { z } from "zod";
import { intIn } from "../config/_values.ts";

/** Extra keys of `[tenants.<name>.limits]` (snake_case; camelCased by `limitsSchema`). */
export const isolationLimitKeys = {
  memory_mb: intIn(0, 65_536).default(128),
  subrequests: intIn(0, 1_000_000).default(1000),
  max_concurrent_requests: intIn(1, 100_000).default(256),
  queue_ms: intIn(0, 60_000).default(1000),
  max_body_bytes: intIn(0, 2 ** 40).default(100 * 1024 * 1024),
  max_header_bytes: intIn(256, 1024 * 1024).default(32 * 1024),
  requests_per_second: intIn(0, 1_000_000).default(0),
  requests_per_second_per_ip: intIn(0, 1_000_000).default(0),
};

/** The isolation fields of `LimitsConfig`. */
export interface IsolationLimits {
  /** Soft heap limit per worker, MiB (0 = none). */
  memoryMb: number;
  /** Outbound fetch/connect calls per event (0 = unlimited). */
  subrequests: number;
  /** Requests in flight for the tenant; more wait up to `queueMs`, then 503. */
  maxConcurrentRequests: number;
  queueMs: number;
  /** Request body limit (413). */
  maxBodyBytes: number;
  /** Request line + header bytes limit (431). */
  maxHeaderBytes: number;
  /** Tenant-wide token bucket, requests per second (0 = off). */
  requestsPerSecond: number;
  /** Per client IP, requests per second (0 = off). */
  requestsPerSecondPerIp: number;
}

const allowEntry = z.string().min(1, "must not be empty").refine(
  (s) => !/[\s/]/.test(s) || /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(s),
  {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not a host, "host:port" or CIDR range (like "10.0.0.0/8")`,
  },
);

/** `[tenants.<name>.egress]`. */
export const egressSchema = z.strictObject({
  allow_private: z.array(allowEntry).default([]),
}).transform((e) => ({ allowPrivate: e.allow_private })).prefault({});

/** `TenantConfig.egress`. */
export interface EgressTenantConfig {
  /** Private/loopback hosts, `host:port` or CIDR ranges this tenant may reach. */
  allowPrivate: string[];
}

/** The defaults of {@linkcode isolationLimitKeys}, for configs built without the schema. */
const DEFAULT_ISOLATION_LIMITS: IsolationLimits = {
  memoryMb: 128,
  subrequests: 1000,
  maxConcurrentRequests: 256,
  queueMs: 1000,
  maxBodyBytes: 100 * 1024 * 1024,
  maxHeaderBytes: 32 * 1024,
  requestsPerSecond: 0,
  requestsPerSecondPerIp: 0,
};

/** `limits` with every isolation key filled in. */
export function completeLimits(limits: Partial<IsolationLimits>): IsolationLimits {
  const out = { ...DEFAULT_ISOLATION_LIMITS };
  for (const k of Object.keys(out) as (keyof IsolationLimits)[]) {
    if (typeof limits[k] === "number") out[k] = limits[k]!;
  }
  return out;
}
