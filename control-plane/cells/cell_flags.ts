/**
 * The `deno run` flags of a cell process: a V8 heap cap and explicit `--allow-*` grants, the
 * tenant's own permissions plus exactly what the cell's runtime needs (read of the runtime code,
 * read/write of the data dir for libSQL and the socket, FFI for libSQL's native module).
 *
 * @module
 */
import type { WorkerPermissions } from "../../runtime/protocol.ts";
import { PERMISSION_KEYS } from "../../runtime/permissions.ts";
import { WorkyError } from "../../runtime/errors.ts";

/** What a cell needs beyond its tenant's grants. */
export interface CellNeeds {
  /** The repository (runtime code, node_modules). */
  codeDir: string;
  /** The data dir (libSQL database, DO files) and the socket's folder. */
  dataDirs: string[];
  /** The unix socket the cell serves on (Deno checks it as net access to `unix:<path>`). */
  socketPath: string;
  /** Host of a remote libSQL server (`host:port`), if the database is not a file. */
  dbHost?: string;
  /** Port of the control plane's egress proxy on 127.0.0.1, for an allowlist tenant's cell. */
  egressProxyPort?: number;
}

/** The V8 old-space cap of a cell, MiB: twice the tenant's soft limit, at least 128. */
export function cellHeapMb(memoryMb: number): number {
  return memoryMb > 0 ? Math.max(128, memoryMb * 2) : 1024;
}

/**
 * How far a cell's RSS may grow over what it had when it first served, MiB (0 = no cap): its
 * heap cap plus 64 MiB. The heap cap doesn't bound memory outside V8's heap (WebAssembly
 * memories, Blob bytes: measured, a 48 MiB tenant held 1 GiB of them), so the control plane
 * watches the process's RSS too (`cell_process.ts`).
 */
export function cellRssGrowthMb(memoryMb: number): number {
  return memoryMb > 0 ? cellHeapMb(memoryMb) + 64 : 0;
}

/**
 * `--allow-*` flags for a cell: each permission the tenant holds, widened by what the cell's
 * own runtime needs; never `-A`.
 *
 * @example
 * ```ts
 * import { cellPermissionFlags } from "./cell_flags.ts";
 * const flags = cellPermissionFlags(
 *   { read: false, write: false, net: ["api.example.com"], env: false, run: false, ffi: false,
 *     sys: false, import: false },
 *   { codeDir: "/srv/worky", dataDirs: ["/srv/data"], socketPath: "/srv/data/cells/a.sock" },
 * );
 * console.log(flags.includes("--allow-net=api.example.com,unix:/srv/data/cells/a.sock")); // true
 * ```
 */
export function cellPermissionFlags(p: WorkerPermissions, needs: CellNeeds): string[] {
  const libsql = `${needs.codeDir.replace(/\/+$/, "")}/node_modules/@libsql`;
  const extra: Record<string, string[]> = {
    read: [needs.codeDir, ...needs.dataDirs],
    write: needs.dataDirs,
    ffi: [libsql],
    net: [
      `unix:${needs.socketPath}`,
      ...(needs.dbHost ? [needs.dbHost] : []),
      ...(needs.egressProxyPort ? [`127.0.0.1:${needs.egressProxyPort}`] : []),
    ],
    // the runtime's Node compat and libSQL read these
    sys: ["networkInterfaces", "cpus", "hostname"],
    env: ["LIBSQL_JS_DEV"],
  };
  const flags: string[] = [];
  for (const key of PERMISSION_KEYS) {
    const grant = p[key];
    if (grant === true) {
      flags.push(`--allow-${key}`);
      continue;
    }
    const list = [...(Array.isArray(grant) ? grant : []), ...(extra[key] ?? [])];
    for (const item of list) {
      if (item.includes(",")) {
        throw new WorkyError(
          "ERR_CONFIG_INVALID",
          `permission ${key}: ${JSON.stringify(item)} contains a comma, which a cell's ` +
            `--allow-${key} flag cannot carry`,
        );
      }
    }
    if (list.length) flags.push(`--allow-${key}=${[...new Set(list)].join(",")}`);
  }
  return flags;
}
