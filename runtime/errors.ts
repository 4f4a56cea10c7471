/**
 * The one error type of Worky. Every failure a person can act on carries a
 * stable `code` and a message that names the input and what is wrong.
 * Across RPC (host ↔ worker) only `{ code, message }` travels.
 */

/** Error codes, grouped by whose fault they are. */
export const ERROR_CODES = {
  // the user's fault (bad input): 4xx at the HTTP edge, exit code 1 in the CLI
  ERR_CONFIG_INVALID: { status: 400, user: true },
  ERR_BAD_REQUEST: { status: 400, user: true },
  ERR_KV_INVALID: { status: 400, user: true },
  ERR_KV_LIMIT: { status: 413, user: true },
  ERR_NOT_FOUND: { status: 404, user: true },
  ERR_NO_ROUTE: { status: 404, user: true },
  ERR_UNAUTHORIZED: { status: 401, user: true },
  ERR_FORBIDDEN: { status: 403, user: true },
  ERR_PERMISSION_DENIED: { status: 403, user: true },
  /** A server started where Deno could ask the terminal for a tenant's permissions (CLI). */
  ERR_PERMISSION_PROMPTS: { status: 400, user: true },
  ERR_CONFLICT: { status: 409, user: true },
  ERR_PAYLOAD_TOO_LARGE: { status: 413, user: true },
  ERR_BUNDLE_INVALID: { status: 422, user: true },
  ERR_BUNDLE_TAMPERED: { status: 422, user: true },
  ERR_RATE_LIMITED: { status: 429, user: true },
  ERR_HEADERS_TOO_LARGE: { status: 431, user: true },
  // the tenant's code failed: 5xx
  ERR_TENANT_EXCEPTION: { status: 500, user: false },
  ERR_TENANT_TIMEOUT: { status: 504, user: false },
  /** An event used more CPU than `limits.cpu_ms` (`worker_handle.ts`). */
  ERR_TENANT_CPU_LIMIT: { status: 503, user: false },
  ERR_TENANT_OVERLOADED: { status: 503, user: false },
  ERR_TENANT_MEMORY: { status: 503, user: false },
  ERR_TENANT_CRASHED: { status: 502, user: false },
  /** The tenant did not accept a WebSocket upgrade relayed to its cell (`cells/cell_websocket.ts`). */
  ERR_TENANT_REFUSED_UPGRADE: { status: 502, user: false },
  /** Its workers died repeatedly: refused during a cooldown (`runtime/crash_backoff.ts`). */
  ERR_TENANT_CRASH_LOOP: { status: 503, user: false },
  // the system's fault
  ERR_INTERNAL: { status: 500, user: false },
  ERR_STORAGE: { status: 500, user: false },
  ERR_UNAVAILABLE: { status: 503, user: false },
  /** A feature this configuration does not support. */
  ERR_NOT_IMPLEMENTED: { status: 501, user: false },
} as const;

/** A Worky error code, e.g. `"ERR_CONFIG_INVALID"`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The shape of an error on the wire (RPC, JSON bodies). */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
}

/**
 * An error with a code and an actionable message.
 *
 * @example
 * ```ts
 * import { WorkyError } from "./errors.ts";
 * const err = new WorkyError("ERR_CONFIG_INVALID", "worky.toml:3: tenants.a.module: missing");
 * console.log(err.status); // 400
 * ```
 */
export class WorkyError extends Error {
  override name = "WorkyError";
  /** When set, the HTTP edge answers with `retry-after` (seconds, rounded up). */
  retryAfterMs?: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** HTTP status the edge answers with. */
  get status(): number {
    return ERROR_CODES[this.code]?.status ?? 500;
  }

  /** True when the caller's input is at fault (not the system). */
  get isUserError(): boolean {
    return ERROR_CODES[this.code]?.user ?? false;
  }

  toJSON(): ErrorPayload {
    return { code: this.code, message: this.message };
  }

  /** Rebuilds an error that crossed RPC; unknown shapes become ERR_INTERNAL. */
  static from(value: unknown): WorkyError {
    if (value instanceof WorkyError) return value;
    if (value && typeof value === "object" && "code" in value && "message" in value) {
      const code = String((value as ErrorPayload).code);
      if (code in ERROR_CODES) {
        return new WorkyError(code as ErrorCode, String((value as ErrorPayload).message));
      }
    }
    const message = value instanceof Error ? value.message : String(value);
    return new WorkyError("ERR_INTERNAL", message, { cause: value });
  }
}
