/**
 * Loads and validates `worky.toml` into a {@linkcode WorkyConfig}.
 *
 * ## Schema
 *
 * ```toml
 * [server]                  # optional
 * hostname = "127.0.0.1"    # default
 * port = 8787               # default; 0 = ephemeral; 0..65535
 * data_dir = ".worky"       # default; relative to the config file's folder
 * db_url = "file:..."       # optional; env WORKY_DB_URL wins; default "file:<data_dir>/worky.db"
 *
 * [tenants.hello]           # tenant name: ^[a-z][a-z0-9_-]{0,62}$
 * module = "examples/hello/mod.ts"             # required; relative to the config folder; must exist
 * routes = ["hello.localhost/*", "*\/hello/*"]  # required, non-empty
 * kv = ["CART"]                                # optional KV binding names
 * vars = { CURRENCY = "EUR" }                  # optional; string, number, boolean, array or table
 *
 * [tenants.hello.permissions]   # Deno's permission names; a key not written is false (denied)
 * net = ["api.example.com:443"] # true | false | ["allowlist", …]; [] is the same as false
 * read = ["./data"]             # read, write and ffi paths: relative to the config folder
 * # write, env, run, ffi, sys, import likewise
 *
 * [tenants.hello.limits]
 * timeout_ms = 10000                 # wall clock per event; default 30000; 1..600000
 * cpu_ms = 50                        # CPU-ish per event; default 30000; 0 (none)..600000
 * max_workers = 2                    # default 2; 1..64
 * max_concurrency_per_worker = 64    # default 64; 1..10000
 * ```
 *
 * Rules:
 *
 * - Binding names (`kv` entries and `vars` keys) match `^[A-Za-z_][A-Za-z0-9_]*$` and are
 *   unique within a tenant: a name can't be both a var and a KV binding.
 * - Routes are `host/path` patterns (see `control-plane/routing/route.ts`). Two routes
 *   that are identical once normalized (host lowercased), in the same or different
 *   tenants, are ambiguous and rejected.
 * - Unknown keys, wrong types, missing required keys, out-of-range numbers, a module file
 *   that doesn't exist and TOML syntax errors are all errors. Every error is reported at
 *   once, one per line, as `worky.toml:LINE: dotted.path: what is wrong`, in a single
 *   {@linkcode WorkyError} with code `ERR_CONFIG_INVALID`. A config is never half valid.
 *
 * Output: tenants sorted by name, every permission key spelled out, defaults filled in,
 * paths absolute.
 *
 * @module
 */

import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { WorkyError } from "../../runtime/errors.ts";
import { configErrorMap, type ConfigIssue, toConfigIssues } from "./_issues.ts";
import { type ConfigFile, configFileSchema, isTable, type TenantFile } from "./_schema.ts";
import { describeValue } from "./_values.ts";
import { formatKeyPath, indexTomlLines } from "./_toml_lines.ts";
import type { PermissionsConfig, ServerConfig, TenantConfig, WorkyConfig } from "./types.ts";
import { checkRegistrySpec, isRegistrySpec } from "../registry/registry_config.ts";
import { localFilePath } from "../storage/database.ts";

export {
  BINDING_KEYS,
  configFileSchema,
  limitsSchema,
  permissionsSchema,
  serverSchema,
  tenantSchema,
} from "./_schema.ts";

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Environment to read `WORKY_DB_URL` from; default `Deno.env`. */
  env?: Record<string, string | undefined>;
  /** Whether an absolute path is an existing file; default `Deno.statSync(path).isFile`. */
  fileExists?: (absPath: string) => boolean;
}

/** Options of {@linkcode parseConfig}. */
export interface ParseConfigOptions extends LoadConfigOptions {
  /** Path of the config file (its basename prefixes messages), or a label like `<inline>`. */
  path: string;
  /** Folder that relative paths are resolved against. */
  dir: string;
}

/** Paths in these permission allowlists are resolved against the config folder. */
const PATH_PERMISSIONS = ["read", "write", "ffi"] as const;

function defaultFileExists(absPath: string): boolean {
  try {
    return Deno.statSync(absPath).isFile;
  } catch {
    return false;
  }
}

function envDbUrl(env: Record<string, string | undefined> | undefined): string | undefined {
  let value: string | undefined;
  if (env) value = env.WORKY_DB_URL;
  else {
    try {
      value = Deno.env.get("WORKY_DB_URL");
    } catch {
      value = undefined; // no env permission: as if unset
    }
  }
  return value ? value : undefined;
}

/** Finds tenant modules that don't exist (on the raw document, so it runs alongside zod). */
function missingModules(
  doc: Record<string, unknown>,
  dir: string,
  fileExists: (absPath: string) => boolean,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isTable(doc.tenants)) return issues;
  for (const [name, tenant] of Object.entries(doc.tenants)) {
    const module = isTable(tenant) ? tenant.module : undefined;
    if (typeof module !== "string" || module === "") continue;
    if (isRegistrySpec(module)) {
      const bad = checkRegistrySpec(module);
      if (bad) issues.push({ path: ["tenants", name, "module"], message: bad });
      continue;
    }
    const abs = resolve(dir, module);
    if (!fileExists(abs)) {
      issues.push({
        path: ["tenants", name, "module"],
        message: `module file ${JSON.stringify(module)} does not exist (looked for ${abs})`,
      });
    }
  }
  return issues;
}

/**
 * `read`/`write` grants that reach Worky's own files: its data folder (the database, the
 * secrets key `secret.key`, the cells' sockets) or a database file elsewhere. A tenant that
 * could read them would read every tenant's KV, secrets and objects.
 */
function grantsOverWorkyFiles(data: ConfigFile, dir: string, server: ServerConfig) {
  const own = [server.dataDir];
  const db = localFilePath(server.dbUrl);
  if (db && db !== ":memory:") own.push(resolve(dir, db));
  const within = (inner: string, outer: string) =>
    inner === outer || inner.startsWith(outer.endsWith("/") ? outer : `${outer}/`);
  const issues: ConfigIssue[] = [];
  for (const [name, tenant] of Object.entries(data.tenants)) {
    for (const key of ["read", "write"] as const) {
      const grant = tenant.permissions[key];
      const paths = grant === true ? ["/"] : Array.isArray(grant) ? grant : [];
      const hit = paths.map((p) => resolve(dir, p)).find((p) =>
        own.some((o) => within(o, p) || within(p, o))
      );
      if (hit === undefined) continue;
      issues.push({
        path: ["tenants", name, "permissions", key],
        message: `${grant === true ? "true" : JSON.stringify(hit)} would give the tenant ` +
          `Worky's own files (${own.join(", ")}: the database and the secrets key); ` +
          `list the folders it needs instead`,
      });
    }
  }
  return issues;
}

function resolvePermissions(
  permissions: PermissionsConfig,
  dir: string,
): PermissionsConfig {
  const out = { ...permissions };
  for (const key of PATH_PERMISSIONS) {
    const grant = out[key];
    if (Array.isArray(grant)) out[key] = grant.map((p) => (isAbsolute(p) ? p : resolve(dir, p)));
  }
  return out;
}

function toTenant(name: string, tenant: TenantFile, dir: string): TenantConfig {
  return {
    name,
    ...tenant,
    module: isRegistrySpec(tenant.module) ? tenant.module : resolve(dir, tenant.module),
    permissions: resolvePermissions(tenant.permissions, dir),
  };
}

function toServer(
  server: ConfigFile["server"],
  dir: string,
  env: Record<string, string | undefined> | undefined,
): ServerConfig {
  const dataDir = resolve(dir, server.dataDir);
  return {
    hostname: server.hostname,
    port: server.port,
    dataDir,
    dbUrl: envDbUrl(env) ?? server.dbUrl ?? `file:${join(dataDir, "worky.db")}`,
  };
}

function byName(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * Validates a parsed document and builds the config, or throws every problem at once.
 * `lineOf` locates a key path in the source text; without it messages carry no line.
 */
function validate(
  doc: Record<string, unknown>,
  opts: ParseConfigOptions,
  lineOf?: (path: ConfigIssue["path"]) => number,
): WorkyConfig {
  const file = basename(opts.path);
  const dir = resolve(opts.dir);
  const result = configFileSchema.safeParse(doc, { error: configErrorMap });
  const server = result.success ? toServer(result.data.server, dir, opts.env) : undefined;
  const issues = [
    ...(result.success ? [] : toConfigIssues(result.error.issues)),
    ...missingModules(doc, dir, opts.fileExists ?? defaultFileExists),
    ...(result.success && server ? grantsOverWorkyFiles(result.data, dir, server) : []),
  ];
  if (issues.length > 0 || !result.success || !server) {
    const lines = issues
      .map((issue, order) => ({ ...issue, line: lineOf?.(issue.path) ?? 0, order }))
      .sort((a, b) => a.line - b.line || a.path.length - b.path.length || a.order - b.order)
      .map(({ path, message, line }) => {
        const where = formatKeyPath(path);
        return `${file}:${lineOf ? `${line}:` : ""} ${where ? `${where}: ` : ""}${message}`;
      });
    throw new WorkyError("ERR_CONFIG_INVALID", lines.join("\n"));
  }
  const data = result.data;
  return {
    path: opts.path,
    dir,
    server,
    registry: data.registry,
    tenants: Object.entries(data.tenants).sort(byName).map(([name, tenant]) =>
      toTenant(name, tenant, dir)
    ),
  };
}

/**
 * Validates the text of a `worky.toml`. File access is injected through `opts` so that
 * callers (and tests) decide what exists.
 *
 * Throws one {@linkcode WorkyError} (`ERR_CONFIG_INVALID`) listing every problem, one per
 * line: `worky.toml:14: tenants.shop.routes[0]: "shop" is not a route (…)`.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./load_config.ts";
 * const config = parseConfig(
 *   '[tenants.hello]\nmodule = "mod.ts"\nroutes = ["hello.localhost/*"]\n',
 *   { path: "/srv/worky.toml", dir: "/srv", env: {}, fileExists: () => true },
 * );
 * console.log(config.tenants[0].module); // "/srv/mod.ts"
 * console.log(config.tenants[0].permissions.net); // false
 * ```
 */
export function parseConfig(text: string, opts: ParseConfigOptions): WorkyConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const what = error.message.split("\n")[0].replace(/^Invalid TOML document:\s*/, "");
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${basename(opts.path)}:${error.line}: invalid TOML: ${what} (column ${error.column})`,
      { cause: error },
    );
  }
  const lines = indexTomlLines(text);
  return validate(doc, opts, (path) => lines.lineOf(path));
}

/**
 * Validates a config given as an object of the same shape as `worky.toml` (snake_case
 * keys), e.g. for `createServer({ tenants: { … } })`. Same rules and output as
 * {@linkcode parseConfig}; messages read `<config>: tenants.a.routes[0]: …` (no line).
 *
 * @example
 * ```ts
 * import { parseConfigObject } from "./load_config.ts";
 * const config = parseConfigObject(
 *   { server: { port: 0 }, tenants: { hello: { module: "mod.ts", routes: ["*\/*"] } } },
 *   { path: "<config>", dir: "/srv", env: {}, fileExists: () => true },
 * );
 * console.log(config.server.port, config.tenants[0].limits.timeoutMs); // 0 30000
 * ```
 */
export function parseConfigObject(config: unknown, opts: ParseConfigOptions): WorkyConfig {
  if (!isTable(config)) {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${basename(opts.path)}: expected a config object, got ${describeValue(config)}`,
    );
  }
  return validate(config, opts);
}

/**
 * Reads and validates a `worky.toml` file; relative paths in it are resolved against
 * its folder. Throws a {@linkcode WorkyError} (`ERR_CONFIG_INVALID`) when the file can't
 * be read or isn't valid (see {@linkcode parseConfig}).
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./load_config.ts";
 * const config = await loadConfig("worky.toml");
 * for (const tenant of config.tenants) console.log(tenant.name, tenant.routes);
 * ```
 */
export async function loadConfig(path: string, opts: LoadConfigOptions = {}): Promise<WorkyConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new WorkyError("ERR_CONFIG_INVALID", `cannot read config file ${abs}: ${why}`, {
      cause: error,
    });
  }
  return parseConfig(text, { ...opts, path: abs, dir: dirname(abs) });
}
