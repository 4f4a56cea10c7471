/**
 * zod schemas of `worky.toml` (the shape and value rules; file checks and path
 * resolution happen in `load_config.ts`). The documented schema is at the top of
 * `load_config.ts`.
 *
 * To add a tenant key, add one line to {@linkcode tenantSchema} (and its field to
 * `TenantConfig` in `types.ts`); a new binding kind also goes in {@linkcode BINDING_KEYS}.
 * Keys of tables are written in snake_case and come out in camelCase ({@linkcode camelKeys}).
 *
 * @module
 */

import {
  isReservedEnv,
  PROCESS_WIDE_SYS_NAMES,
  TENANT_SYS_NAMES,
} from "../../runtime/permissions.ts";
import { z } from "zod";
import { findConflicts } from "../routing/route_table.ts";
import { parseRoute } from "../routing/route.ts";
import type { PermissionGrant } from "./types.ts";
import { formatKeyPath } from "./_toml_lines.ts";
import { describeValue, intIn } from "./_values.ts";
import { egressSchema, isolationLimitKeys } from "../limits/limits_config.ts";
import { registrySchema } from "../registry/registry_config.ts";
import { cronSchema } from "../scheduler/cron_config.ts";
import {
  checkQueueNames,
  queueConsumersSchema,
  queueProducersSchema,
} from "../queues/queue_config.ts";
import { durableObjectsSchema } from "../durable_objects/do_config.ts";

/** Tenant names: the keys of `[tenants.<name>]`. */
export const TENANT_NAME: RegExp = /^[a-z][a-z0-9_-]{0,62}$/;
/** Binding names on `env` (KV namespaces, vars, …). */
export const BINDING_NAME: RegExp = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BINDING_NAME_RULE = "binding name (letters, digits and _, not starting with a digit)";

/** snake_case → camelCase, as a type. */
export type CamelCase<S extends string> = S extends `${infer H}_${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;

/** An object type with its keys camelCased. */
export type CamelKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** Returns a copy of a table with snake_case keys renamed to camelCase. */
export function camelKeys<T extends object>(table: T): CamelKeys<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(table)) {
    out[key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return out as CamelKeys<T>;
}

/** True for a TOML table (a plain or null-prototype object). */
export function isTable(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

/** A binding name (`CART`, `API_KEY`). */
function bindingName() {
  return z.string().regex(BINDING_NAME, {
    error: (iss) => `${describeValue(iss.input)} is not a valid ${BINDING_NAME_RULE}`,
  });
}

/** A non-empty string. */
function text() {
  return z.string().min(1, "must not be empty");
}

/** A table whose keys must match `name` (checked here so that values are still validated). */
function namedTable<V extends z.ZodType>(name: RegExp, what: string, value: V) {
  return z.record(z.string(), value).superRefine((table, ctx) => {
    if (!isTable(table)) return; // a wrong type, already reported
    for (const key of Object.keys(table)) {
      if (!name.test(key)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${JSON.stringify(key)} is not a valid ${what}`,
        });
      }
    }
  }, { when: () => true });
}

/**
 * Checks that `value` is JSON data (TOML without dates, nan, inf; `null` can only come from
 * a config object) and copies it to plain objects.
 */
function toJson(value: unknown, path: (string | number)[], ctx: z.RefinementCtx): unknown {
  if (typeof value === "string" || typeof value === "boolean" || value === null) return value;
  if (typeof value === "number") {
    if (Number.isFinite(value)) return value;
    ctx.addIssue({ code: "custom", path, message: `${value} is not a JSON number` });
  } else if (Array.isArray(value)) {
    return value.map((item, i) => toJson(item, [...path, i], ctx));
  } else if (isTable(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = toJson(item, [...path, key], ctx);
    return out;
  } else {
    ctx.addIssue({
      code: "custom",
      path,
      message: `${describeValue(value)} is not a JSON value (write dates as strings)`,
    });
  }
  return value;
}

/** A var value: string, number, boolean, array or table, returned as plain JSON data. */
const jsonValue = z.unknown().transform((value, ctx) => toJson(value, [], ctx));

/** A route pattern, validated with {@linkcode parseRoute}. */
const route = z.string().superRefine((pattern, ctx) => {
  try {
    parseRoute(pattern);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
  }
});

const HOST_ENTRY_KEYS = new Set(["net", "import"]);

/** `true`, `false` or an allowlist of non-empty strings; `[]` means `false`. */
function grant(key: string) {
  return z.custom<PermissionGrant>((value) => {
    if (typeof value === "boolean") return true;
    if (!Array.isArray(value)) return false;
    return value.every((item) =>
      typeof item === "string" && item !== "" &&
      !(HOST_ENTRY_KEYS.has(key) && item.includes("/"))
    );
  }, {
    error: (iss) => {
      const value = iss.input;
      if (!Array.isArray(value)) {
        return `expected true, false or a list of strings, got ${describeValue(value)}`;
      }
      const i = value.findIndex((item) => typeof item !== "string" || item === "");
      if (i !== -1) {
        return `item ${i} must be a non-empty string, got ${describeValue(value[i])}`;
      }
      const bad = value.find((item) => item.includes("/"));
      return `${
        JSON.stringify(bad)
      } is not a host (write "host" or "host:port", no scheme or path)`;
    },
  }).default(false).transform((g) => (Array.isArray(g) && g.length === 0 ? false : g));
}

/**
 * `[tenants.<name>.permissions]`: Deno's permission names. A key that isn't written is
 * `false` (denied). `read`, `write` and `ffi` paths are resolved against the config folder
 * by the loader.
 */
export const permissionsSchema = z.strictObject({
  read: grant("read"),
  write: grant("write"),
  net: grant("net"),
  env: grant("env").refine(
    (g) => !Array.isArray(g) || !g.some(isReservedEnv),
    {
      error: (iss) =>
        `${
          JSON.stringify((iss.input as string[]).find(isReservedEnv))
        } is Worky's own (WORKY_* and DENO_AUTH_TOKENS are never given to a tenant); ` +
        `pass a value to the tenant with [tenants.<name>] vars or worky secret put`,
    },
  ),
  run: grant("run"),
  ffi: grant("ffi"),
  sys: grant("sys").refine(
    (g) => !Array.isArray(g) || g.every((n) => TENANT_SYS_NAMES.includes(n)),
    {
      error: (iss) => {
        const bad = (iss.input as string[]).find((n) => !TENANT_SYS_NAMES.includes(n));
        return `${JSON.stringify(bad)} can't be granted to a tenant (` +
          (PROCESS_WIDE_SYS_NAMES.includes(bad!)
            ? "it reaches the whole Worky process"
            : "not one of Deno's sys names") +
          `); grantable: ${TENANT_SYS_NAMES.join(", ")}`;
      },
    },
  ),
  import: grant("import"),
});

/** `[tenants.<name>.limits]`, returned with camelCase keys. */
export const limitsSchema = z.strictObject({
  timeout_ms: intIn(1, 600_000).default(30_000),
  cpu_ms: intIn(0, 600_000).default(30_000),
  max_workers: intIn(1, 64).default(2),
  max_concurrency_per_worker: intIn(1, 10_000).default(64),
  min_workers: intIn(0, 64).default(0),
  idle_timeout_ms: intIn(1_000, 86_400_000).default(60_000),
  /**
   * "auto" (default: in-process, moved into a cell of its own once its workers died twice within 10 s or one was stopped for memory or CPU), "thread"
   * (in-process, never moved for crash loops) or "cell" (always a child process of its own).
   */
  isolation: z.enum(["auto", "thread", "cell"], {
    error: (iss) => `expected "auto", "thread" or "cell", got ${describeValue(iss.input)}`,
  }).optional(), // absent = "auto"
  ...isolationLimitKeys,
}).transform(camelKeys);

/** `[server]`, returned with camelCase keys (paths and `WORKY_DB_URL` applied by the loader). */
export const serverSchema = z.strictObject({
  hostname: text().default("127.0.0.1"),
  port: intIn(0, 65_535).default(8787),
  data_dir: text().default(".worky"),
  db_url: text().optional(),
}).transform(camelKeys);

/**
 * Tenant keys whose names end up on `env`: an array of names (`kv = ["CART"]`) or a
 * table keyed by name (`vars = { A = 1 }`). Names must be unique across all of them.
 */
export const BINDING_KEYS: readonly string[] = ["vars", "kv", "queues", "durable_objects"];

/** Reports binding names that are used twice (across `BINDING_KEYS`). */
function checkBindingNames(tenant: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (const key of BINDING_KEYS) {
    const value = tenant[key];
    const names: [string, (string | number)[]][] = Array.isArray(value)
      ? value.flatMap((name, i) => typeof name === "string" ? [[name, [key, i]]] : [])
      : isTable(value)
      ? Object.keys(value).map((name) => [name, [key, name]])
      : [];
    for (const [name, path] of names) {
      const where = formatKeyPath(path);
      const first = seen.get(name);
      if (first === undefined) seen.set(name, where);
      else {
        ctx.addIssue({
          code: "custom",
          path,
          message: `binding name ${JSON.stringify(name)} is already used by ${first}`,
        });
      }
    }
  }
}

/**
 * One `[tenants.<name>]` table. Add a tenant key here, one line each; unknown keys are
 * errors. `module` is resolved (and must exist) by the loader.
 */
export const tenantSchema = z.strictObject({
  module: text(),
  routes: z.array(route).min(1, "must list at least one route"),
  kv: z.array(bindingName()).default([]),
  vars: namedTable(BINDING_NAME, BINDING_NAME_RULE, jsonValue).default({}),
  permissions: permissionsSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  egress: egressSchema,
  cron: cronSchema,
  queues: queueProducersSchema,
  queue_consumers: queueConsumersSchema,
  durable_objects: durableObjectsSchema,
}).superRefine(checkBindingNames, { when: () => true }).transform(camelKeys);

/** Reports routes whose normalized patterns are identical, within or across tenants. */
function checkRouteConflicts(file: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const tenants = file.tenants;
  if (!isTable(tenants)) return;
  const pairs: [string, (string | number)[]][] = [];
  for (const [name, tenant] of Object.entries(tenants)) {
    const routes = isTable(tenant) ? tenant.routes : undefined;
    if (!Array.isArray(routes)) continue;
    routes.forEach((pattern, i) => {
      try {
        if (typeof pattern === "string" && parseRoute(pattern)) {
          pairs.push([pattern, ["tenants", name, "routes", i]]);
        }
      } catch {
        // reported by the route schema
      }
    });
  }
  for (const { first, second } of findConflicts(pairs)) {
    const same = first.route.pattern === second.route.pattern
      ? ""
      : ` (${JSON.stringify(first.route.pattern)})`;
    ctx.addIssue({
      code: "custom",
      path: second.value,
      message: `${JSON.stringify(second.route.pattern)} is the same route as ${
        formatKeyPath(first.value)
      }${same}: identical routes are ambiguous`,
    });
  }
}

/** The whole `worky.toml`. */
export const configFileSchema = z.strictObject({
  server: serverSchema.prefault({}),
  registry: registrySchema.prefault({}),
  tenants: namedTable(
    TENANT_NAME,
    "tenant name (lowercase letter first, then a-z 0-9 _ -, at most 63 characters)",
    tenantSchema,
  ).default({}),
}).superRefine(checkRouteConflicts, { when: () => true })
  .superRefine(checkQueueNames, { when: () => true });

/** The validated file, before paths are resolved. */
export type ConfigFile = z.output<typeof configFileSchema>;
/** One validated tenant table, before paths are resolved. */
export type TenantFile = z.output<typeof tenantSchema>;
