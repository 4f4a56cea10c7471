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
 * Builds explicit worker permissions; a missing key is denied, never inherited.
 *
 * @example
 * ```ts
 * import { toWorkerPermissions } from "./permissions.ts";
 * const p = toWorkerPermissions({ net: ["api.example.com:443"] });
 * console.log(p.read, p.net); // false ["api.example.com:443"]
 * ```
 */
export function toWorkerPermissions(config: Partial<WorkerPermissions>): WorkerPermissions {
  const out = {} as WorkerPermissions;
  for (const key of PERMISSION_KEYS) {
    const grant = config[key];
    out[key] = Array.isArray(grant) ? [...grant] : grant === true;
  }
  return out;
}

/** A stable key for a permission set: workers with equal keys are interchangeable spares. */
export function permissionsKey(p: WorkerPermissions): string {
  return PERMISSION_KEYS.map((k) =>
    `${k}=${Array.isArray(p[k]) ? [...p[k]].sort().join(",") : p[k]}`
  )
    .join(";");
}
