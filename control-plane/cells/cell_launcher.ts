/**
 * Decides which tenants run in cells and starts their {@linkcode CellDeployment}s.
 *
 * A tenant runs in a cell when `[tenants.<name>.limits] isolation = "cell"`, when it is in
 * the quarantine record (`<dataDir>/quarantine.json`, `runtime/memory/quarantine.ts`: a worker
 * of it could not be stopped), or when a process of the same supervisor run moved it into one
 * (`cell_moves.ts`: a graceful replacement keeps what the process it replaces learned). A cell
 * holds exactly one tenant: whatever takes the process down is that tenant's doing, so blame
 * (and the quarantine record) is never ambiguous and no other tenant shares its restarts.
 *
 * @module
 */
import { dirname } from "node:path";
import type { TenantConfig } from "../config/types.ts";
import { type DeploymentSpec, egressPolicyOf } from "../../runtime/deployment.ts";
import type { Logger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { readQuarantine } from "../../runtime/memory/quarantine.ts";
import type { CellInit } from "../../runtime/cells/cell_protocol.ts";
import { cellHeapMb, cellPermissionFlags, cellRssGrowthMb } from "./cell_flags.ts";
import { CellProcess } from "./cell_process.ts";
import { CellDeployment } from "./cell_deployment.ts";
import { CellMoves } from "./cell_moves.ts";
import { localFilePath } from "../storage/database.ts";
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
  /**
   * The supervisor run this process belongs to (`WORKY_SUPERVISED`): moves into cells are
   * recorded under it and honoured by its next processes (`cell_moves.ts`). Absent: not kept.
   */
  supervisorRun?: string;
}

/** How a tenant that runs in a cell starts there. */
export interface CellStart {
  /** At SCHED_IDLE from the start: the tenant already misbehaved. */
  idle: boolean;
}

/**
 * Starts tenants in cells.
 *
 * @example
 * ```ts ignore
 * const cells = new CellLauncher({ dataDir, dbUrl, logger, secrets });
 * const start = await cells.wants(config);
 * if (start) slot.current = await cells.deploy(spec, config.limits.memoryMb, start.idle);
 * ```
 */
export class CellLauncher {
  readonly #o: CellLauncherOptions;
  readonly #live = new Set<CellDeployment>();
  #port: number | undefined;
  #socketDir: string | undefined;

  readonly #moves: CellMoves;

  constructor(options: CellLauncherOptions) {
    this.#o = options;
    this.#moves = new CellMoves(options.dataDir, options.supervisorRun);
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

  /**
   * How `tenant` starts in a cell, or null when it runs in this process: configured
   * (`isolation = "cell"`), quarantined (at SCHED_IDLE), or moved by an earlier process of this
   * supervisor run (`cell_moves.ts`; at SCHED_IDLE when it misbehaved).
   */
  async wants(tenant: TenantConfig): Promise<CellStart | null> {
    if (tenant.limits.isolation === "cell") return { idle: false };
    const quarantined = (await this.#record("quarantine", () => readQuarantine(this.#o.dataDir)))[
      tenant.name
    ];
    if (quarantined) {
      this.#say(
        tenant.name,
        `quarantined ${quarantined.count}× (${quarantined.reason})`,
      );
      return { idle: true };
    }
    if ((tenant.limits.isolation ?? "auto") !== "auto") return null;
    const moved = (await this.#record("moves", () => this.#moves.read()))[tenant.name];
    if (!moved) return null;
    this.#say(tenant.name, `the process this one replaced moved it there (${moved.why})`);
    return { idle: moved.misbehaved };
  }

  /** Keeps `tenant`'s move into a cell for the next processes of this supervisor run. */
  recordMove(tenant: string, move: { why: string; misbehaved: boolean }): Promise<void> {
    return this.#moves.record(tenant, move).catch(this.#unrecorded(tenant));
  }

  /** Logs that a change to `tenant`'s move was not recorded (it only speeds up a restart). */
  #unrecorded(tenant: string): (err: Error) => void {
    return (err) =>
      this.#o.logger.log({
        level: "error",
        msg: `cells: could not record the move of tenant "${tenant}": ${err.message}`,
        tenant,
      });
  }

  /** Forgets `tenant`'s move (it is being deployed again: it gets another chance in-process). */
  forgetMove(tenant: string): Promise<void> {
    return this.#moves.forget(tenant).catch(() => {});
  }

  #say(tenant: string, why: string) {
    this.#o.logger.log({
      level: "warn",
      msg: `tenant "${tenant}" runs in a cell of its own: ${why}`,
      tenant,
    });
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
      mark: crypto.randomUUID(),
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
      rssGrowthMb: cellRssGrowthMb(memoryMb),
      // a tenant moved here for its weight that then misbehaves starts at SCHED_IDLE next time
      onDemote: (why) =>
        void this.#moves.misbehaved(spec.tenant, why).catch(this.#unrecorded(spec.tenant)),
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

  /** A record (quarantine, moves); an unreadable one is logged and ignored (never blocks a start). */
  async #record<T extends object>(what: string, read: () => Promise<T>): Promise<Partial<T>> {
    try {
      return await read();
    } catch (err) {
      this.#o.logger.log({
        level: "error",
        msg: `cells: ignoring the ${what} record: ${(err as Error).message}`,
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
  const path = localFilePath(url);
  if (path === ":memory:") {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `tenant "${tenant}" runs in a cell, which needs a database file or server ` +
        `(db_url is ${url}: a private in-memory database)`,
    );
  }
  return path;
}
