/**
 * Decides which tenants run in cells and starts their {@linkcode CellDeployment}s.
 *
 * A tenant runs in a cell when `[tenants.<name>.limits] isolation = "cell"`, or when it is in
 * the quarantine record (`<dataDir>/quarantine.json`, `runtime/memory/quarantine.ts`: a worker
 * of it could not be stopped). A cell holds exactly one tenant: whatever takes the process down
 * is that tenant's doing, so blame (and the quarantine record) is never ambiguous and no other
 * tenant shares its restarts.
 *
 * @module
 */
import { dirname } from "node:path";
import type { TenantConfig } from "../config/types.ts";
import { type DeploymentSpec, egressPolicyOf } from "../../runtime/deployment.ts";
import type { Logger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { type Quarantine, readQuarantine } from "../../runtime/memory/quarantine.ts";
import type { CellInit } from "../../runtime/cells/cell_protocol.ts";
import { cellHeapMb, cellPermissionFlags } from "./cell_flags.ts";
import { CellProcess } from "./cell_process.ts";
import { CellDeployment } from "./cell_deployment.ts";
import type { Resolver } from "../../runtime/egress.ts";
import type { EgressProxyRegistry } from "../../runtime/runtime.ts";

const CODE_DIR = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** Unix socket paths are limited to 108 bytes. */
const MAX_SOCKET_PATH = 100;

/** Where a tenant's decrypted secrets come from (`control-plane/secrets/secret_store.ts`). */
interface SecretSource {
  forTenant(tenant: string): Promise<Record<string, string>>;
}

/** Options of {@linkcode CellLauncher}. */
export interface CellLauncherOptions {
  dataDir: string;
  /** The control plane's libSQL URL; cells open the same database. */
  dbUrl: string;
  logger: Logger;
  secrets?: SecretSource;
  /** This process's egress proxy: allowlist tenants' cells send their fetches through it. */
  egressProxy?: EgressProxyRegistry;
  /** Resolver of those tenants' egress policies (default the system's; tests inject). */
  egressResolver?: Resolver;
  /** The server's Durable Object timings, for cells' own directories. */
  durableObjects?: CellInit["durableObjects"];
  /** How cells' lease owners begin (`cellOwnerPrefix` of the control plane's), default "cell:". */
  objectOwnerPrefix?: string;
}

/**
 * Starts tenants in cells.
 *
 * @example
 * ```ts ignore
 * const cells = new CellLauncher({ dataDir, dbUrl, logger, secrets });
 * if (await cells.wants(config)) slot.current = await cells.deploy(config, spec);
 * ```
 */
export class CellLauncher {
  readonly #o: CellLauncherOptions;
  readonly #live = new Set<CellDeployment>();
  #port: number | undefined;
  #socketDir: string | undefined;

  constructor(options: CellLauncherOptions) {
    this.#o = options;
  }

  /**
   * True when `tenant` (with `isolation = "auto"`) may be moved into a cell because it costs
   * the others too much in-process (`why`; the rules: `WorkerPoolOptions.onNeedsCell`): not when
   * the database is `:memory:` (logged, so the operator sees why it stays in-process).
   */
  mayMove(tenant: TenantConfig, why: string): boolean {
    if ((tenant.limits.isolation ?? "auto") !== "auto") return false;
    const blocker = this.#o.dbUrl === ":memory:" || this.#o.dbUrl === "file::memory:"
      ? "the database is :memory:, which a cell can't share"
      : null;
    if (blocker) {
      this.#o.logger.log({
        level: "warn",
        msg: `tenant "${tenant.name}" should move into a cell (${why}) but stays in-process: ` +
          blocker,
        tenant: tenant.name,
      });
    }
    return blocker === null;
  }

  /** True when `tenant` must run in a cell (config, or the quarantine record). */
  async wants(tenant: TenantConfig): Promise<boolean> {
    const quarantined = (await this.#quarantine())[tenant.name];
    const configured = tenant.limits.isolation === "cell";
    if (!configured && !quarantined) return false;
    if (quarantined && !configured) {
      this.#o.logger.log({
        level: "warn",
        msg:
          `tenant "${tenant.name}" runs in a cell of its own: quarantined ${quarantined.count}× ` +
          `(${quarantined.reason})`,
        tenant: tenant.name,
      });
    }
    return true;
  }

  /**
   * Starts `spec` in a cell of its own; resolves once its module loaded there. `idle`: the
   * tenant already misbehaved (moved here for a crash loop or a zombie), so the cell starts at
   * SCHED_IDLE: its startup doesn't compete with the server either.
   */
  async deploy(spec: DeploymentSpec, memoryMb: number, idle = false): Promise<CellDeployment> {
    const dbFile = localDbFile(this.#o.dbUrl, spec.tenant);
    const socketDir = await this.#socketDirectory();
    const token = crypto.randomUUID();
    // An allowlist tenant's cell may not listen and dial anywhere, so it can't run an egress
    // proxy: its fetches go through this process's, which dials exactly what the policy checked.
    const egress = Array.isArray(spec.permissions.net)
      ? this.#o.egressProxy?.register(spec.tenant, egressPolicyOf(spec, this.#o.egressResolver))
      : undefined;
    const init: CellInit = {
      spec,
      secrets: await this.#o.secrets?.forTenant(spec.tenant) ?? {},
      dbUrl: this.#o.dbUrl,
      socketPath: `${socketDir}/c-${token.slice(0, 8)}.sock`,
      token,
      controlPlanePort: this.#port,
      egressProxy: egress &&
        { port: egress.port, username: egress.username, password: egress.password },
      dataDir: this.#o.dataDir,
      objectOwner: `${this.#o.objectOwnerPrefix ?? "cell:"}${spec.tenant}:${token.slice(0, 8)}`,
      durableObjects: this.#o.durableObjects,
    };
    const dataDirs = [
      ...new Set([this.#o.dataDir, socketDir, ...(dbFile ? [dirname(dbFile)] : [])]),
    ];
    const flags = [
      `--v8-flags=--max-old-space-size=${cellHeapMb(memoryMb)}`,
      ...cellPermissionFlags(spec.permissions, {
        codeDir: CODE_DIR,
        dataDirs,
        socketPath: init.socketPath,
        dbHost: dbFile ? undefined : new URL(this.#o.dbUrl).host,
        egressProxyPort: egress?.port,
      }),
    ];
    const cell = new CellProcess({
      tenant: spec.tenant,
      init,
      flags,
      denoConfig: `${CODE_DIR}/deno.json`,
      logger: this.#o.logger,
      idle,
    });
    try {
      await cell.start();
    } catch (err) {
      egress?.release();
      throw err;
    }
    const deployment = new CellDeployment(spec, cell, token, () => {
      this.#live.delete(deployment);
      egress?.release();
    });
    this.#live.add(deployment);
    return deployment;
  }

  /** The control plane listens on `port`: every cell, now and later, refuses it to tenants. */
  setControlPlanePort(port: number): void {
    this.#port = port;
    for (const d of this.#live) d.setControlPlanePort(port).catch(() => {});
  }

  /** The quarantine record; an unreadable one is logged and ignored (never blocks a start). */
  async #quarantine(): Promise<Quarantine> {
    try {
      return await readQuarantine(this.#o.dataDir);
    } catch (err) {
      this.#o.logger.log({
        level: "error",
        msg: `cells: ignoring the quarantine record: ${(err as Error).message}`,
      });
      return {};
    }
  }

  async #socketDirectory(): Promise<string> {
    if (this.#socketDir) return this.#socketDir;
    let dir = `${this.#o.dataDir.replace(/\/+$/, "")}/cells`;
    if (dir.length + 16 > MAX_SOCKET_PATH) dir = await Deno.makeTempDir({ prefix: "worky-cells-" });
    await Deno.mkdir(dir, { recursive: true });
    return this.#socketDir = dir;
  }
}

/** The database file a cell opens (null for a libSQL server); `:memory:` can't be shared. */
function localDbFile(url: string, tenant: string): string | null {
  if (url === ":memory:" || url === "file::memory:") {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `tenant "${tenant}" runs in a cell, which needs a database file or server ` +
        `(db_url is ${url}: a private in-memory database)`,
    );
  }
  const m = /^file:(?:\/\/[^/?#]*)?([^?#]*)/i.exec(url);
  return m ? decodeURIComponent(m[1]) : null;
}
