/**
 * Turns a tenant's permission config into the `deno.permissions` of its
 * workers. Every key is spelled out: an omitted key would inherit the host's
 * grant, and `"inherit"` would share (and let the tenant revoke) the host's
 * permission state.
 */
import type { WorkerPermissions } from "./protocol.ts";

/** Every Deno permission key a worker option takes. */
export const PERMISSION_KEYS = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
] as const;

/**
 * Deno's `sys` names that reach the whole process (measured on Deno 2.9.6 from a worker):
 * `inspector` (`node:inspector` opens the process's debugger, every isolate's, the host's
 * included, and a session on its own isolate reads the closures behind Worky's guards) and
 * `setPriority` (`os.setPriority` renices any thread, the host's main thread too).
 */
export const PROCESS_WIDE_SYS_NAMES: readonly string[] = Object.freeze([
  "inspector",
  "setPriority",
]);

/**
 * The `sys` names a tenant may hold: Deno's, but for {@link PROCESS_WIDE_SYS_NAMES}.
 * `sys = true` grants exactly these.
 */
export const TENANT_SYS_NAMES: readonly string[] = Object.freeze([
  "hostname",
  "osRelease",
  "osUptime",
  "loadavg",
  "networkInterfaces",
  "systemMemoryInfo",
  "uid",
  "gid",
  "cpus",
  "homedir",
  "getegid",
  "username",
  "statfs",
  "getPriority",
  "userInfo",
]);

/**
 * Environment variables no tenant reads, whatever its `env` grant: Worky's own (`WORKY_*`: the
 * secrets key, a database URL with its token…) and Deno's registry tokens. A tenant in this
 * process shares the process's environment (measured: `env = true` read `WORKY_SECRET_KEY`).
 */
export function isReservedEnv(name: string): boolean {
  const upper = name.toUpperCase();
  return upper.startsWith("WORKY_") || upper === "DENO_AUTH_TOKENS";
}

/** The host's environment variable names (the control plane runs with every permission). */
function hostEnvNames(): string[] {
  return Object.keys(Deno.env.toObject());
}

/** No permission at all. */
export const NO_PERMISSIONS: WorkerPermissions = Object.freeze({
  read: false,
  write: false,
  net: false,
  env: false,
  run: false,
  ffi: false,
  sys: false,
  import: false,
});

/**
 * Builds explicit worker permissions; a missing key is denied, never inherited, `sys` is never
 * wider than {@link TENANT_SYS_NAMES} and `env` never names a reserved variable
 * ({@link isReservedEnv}; the config loader refuses both kinds of name).
 *
 * @example
 * ```ts
 * import { toWorkerPermissions } from "./permissions.ts";
 * const p = toWorkerPermissions({ net: ["api.example.com:443"] });
 * console.log(p.read, p.net); // false ["api.example.com:443"]
 * ```
 */
export function toWorkerPermissions(
  config: Partial<WorkerPermissions>,
  envNames: () => string[] = hostEnvNames,
): WorkerPermissions {
  const out = {} as WorkerPermissions;
  for (const key of PERMISSION_KEYS) {
    const grant = config[key];
    out[key] = Array.isArray(grant) ? [...grant] : grant === true;
  }
  // `env = true`: every variable the process has now but the reserved ones
  if (out.env === true) out.env = envNames().filter((n) => !isReservedEnv(n)).sort();
  else if (Array.isArray(out.env)) out.env = out.env.filter((n) => !isReservedEnv(n));
  if (Array.isArray(out.env) && out.env.length === 0) out.env = false;
  if (out.sys === true) out.sys = [...TENANT_SYS_NAMES];
  else if (Array.isArray(out.sys)) out.sys = out.sys.filter((n) => TENANT_SYS_NAMES.includes(n));
  return out;
}

/** A stable key for a permission set: workers with equal keys are interchangeable spares. */
export function permissionsKey(p: WorkerPermissions): string {
  return PERMISSION_KEYS.map((k) =>
    `${k}=${Array.isArray(p[k]) ? [...p[k]].sort().join(",") : p[k]}`
  )
    .join(";");
}
