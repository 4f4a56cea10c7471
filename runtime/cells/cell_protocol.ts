/**
 * What the control plane and a cell process (`cell_main.ts`) say to each other: the init
 * message (one JSON line on the cell's stdin), the headers of the relay over the cell's unix
 * socket, and the log fields that mark the cell ready or failed. Types and constants only.
 *
 * @module
 */
import type { DeploymentSpec } from "../deployment.ts";
import type { EgressProxyAddress } from "../egress.worker.ts";

/** The first (and only) line the control plane writes to a cell's stdin. */
export interface CellInit {
  /** The tenant's deployment, code included (bundled once by the control plane). */
  spec: DeploymentSpec;
  /** The tenant's decrypted secrets (never in argv, a file or a log line). */
  secrets: Record<string, string>;
  /** The control plane's libSQL URL (the same database: KV, queues). */
  dbUrl: string;
  /** Unix socket the cell serves on. */
  socketPath: string;
  /** Required in {@linkcode CELL_TOKEN_HEADER} on internal operations. */
  token: string;
  /** The cell's own stdout lines carry it ({@linkcode CELL_MARK_FIELD}); tenant code never sees it. */
  mark: string;
  /** The control plane's listening port, refused to tenants on every local address. */
  controlPlanePort?: number;
  /**
   * The control plane's egress proxy and this tenant's credentials there, for a cell that may
   * not run its own (an allowlist tenant: the proxy must dial any checked address).
   */
  egressProxy?: EgressProxyAddress;
  /** The control plane's data directory: Durable Object files live under `<dataDir>/do`. */
  dataDir: string;
  /**
   * Lease owner of this cell's Durable Objects, the same across restarts of the cell: a
   * restarted cell takes its objects back at once instead of waiting out its own leases.
   */
  objectOwner: string;
  /** Durable Object timings of the server (idle eviction, lease length), when set. */
  durableObjects?: { idleMs?: number; leaseMs?: number; tickMs?: number };
}

/** The event kind that fires a Durable Object alarm in a cell (payload {@linkcode CellAlarm}). */
export const CELL_DO_ALARM = "worky:do-alarm";

/** Payload of {@linkcode CELL_DO_ALARM}. */
export interface CellAlarm {
  address: { tenant: string; className: string; id: string };
  retryCount: number;
}

/** Carries the control plane's request id to the cell. */
export const CELL_REQUEST_ID_HEADER = "x-worky-cell-request-id";
/** Names an internal operation (`event`, `port`) instead of a tenant request. */
export const CELL_OP_HEADER = "x-worky-cell-op";
/** The cell's token; an op without it is refused. */
export const CELL_TOKEN_HEADER = "x-worky-cell-token";
/** On a cell's answer: the body is a Worky JSON error, not the tenant's response. */
export const CELL_ERROR_HEADER = "x-worky-cell-error";

/**
 * On a cell's answer: the tenant's code still produces the body (a stream from its worker), so
 * the control plane meters the event until the body is over. Set by the cell only.
 */
export const CELL_STREAMED_HEADER = "x-worky-cell-streamed";

/**
 * A tenant response's `content-encoding`, renamed on the way through the cell's socket: Deno's
 * fetch would decompress the body but keep the header. The control plane renames it back.
 */
export const CELL_CONTENT_ENCODING_HEADER = "x-worky-cell-content-encoding";

/** Log-line field: the cell serves (its module loaded). */
export const CELL_READY_FIELD = "cellReady";
/** Log-line field: the cell could not start; the value is `{ code, message }`. */
export const CELL_FAILED_FIELD = "cellFailed";
/**
 * Log-line field carrying {@linkcode CellInit.mark}: the control plane believes the two fields
 * above only on a line that has it. Tenant code shares the cell's process, and wrote raw lines
 * to its stdout (`Deno.stdout`, `fs.writeSync(1)`, measured) until `stdio_capture.worker.ts`
 * closed those ways; should another appear, any line without the mark is the tenant's own.
 */
export const CELL_MARK_FIELD = "cellMark";

/** Exit code of a cell that stops because a worker thread could not be stopped. */
export const CELL_EXIT_RUNAWAY = 75;
/** Exit code of a cell whose tenant failed to start. */
export const CELL_EXIT_START_FAILED = 3;
