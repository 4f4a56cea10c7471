/**
 * A tenant deployment that runs in a cell (a child process, `runtime/cells/cell_main.ts`) and
 * looks like a `Deployment` to the DeploymentManager, the ingress and the scheduler: `fetch`,
 * `event`, `drain`, `stats`, `tenant`, `version`. Requests are relayed over the cell's unix
 * socket with their bodies streamed both ways; non-fetch events go as a `node:v8`-serialized
 * POST with the cell's token.
 *
 * - The cell dies (OOM abort, kill): requests in flight get 502 `ERR_TENANT_CRASHED` (503
 *   `ERR_TENANT_MEMORY` when it was killed for its RSS, `cell_process.ts`); the
 *   supervisor (`cell_process.ts`) restarts it and later requests wait for it.
 * - `limits.cpu_ms`: the control plane reads the cell's worker threads' CPU while requests are in
 *   flight (`cell_cpu.ts`; the cell can't read its own); a request past it gets 503
 *   `ERR_TENANT_CPU_LIMIT` and the cell is restarted.
 * - A worker in the cell timed out (504), passed its CPU limit or was killed for memory (503):
 *   if one of its worker threads keeps running (a thread `terminate()` could not stop: judged
 *   150 ms later, or 450 ms when it is starved, `CellCpuMeter.spinning`), the cell is recycled.
 * - No answer within the tenant's timeout + 2 s: the cell is killed, 504.
 * - WebSocket upgrades are refused with 501 `ERR_NOT_IMPLEMENTED`.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import type { DeploymentSpec } from "../../runtime/deployment.ts";
import { type ErrorPayload, WorkyError } from "../../runtime/errors.ts";
import {
  CELL_CONTENT_ENCODING_HEADER,
  CELL_DO_ALARM,
  CELL_ERROR_HEADER,
  CELL_OP_HEADER,
  CELL_REQUEST_ID_HEADER,
  CELL_STREAMED_HEADER,
  CELL_TOKEN_HEADER,
  type CellAlarm,
} from "../../runtime/cells/cell_protocol.ts";
import type { CellIncarnation, CellProcess } from "./cell_process.ts";
import { relayWebSocket } from "./cell_websocket.ts";
import { CellCpuMeter } from "./cell_cpu.ts";
import { onStreamEnd } from "../../runtime/stream_end.ts";
import { newRequestId } from "../http/request_id.ts";
import type { ObjectAddress } from "../../runtime/durable_objects/backend.ts";
import type { ObjectResult } from "../../runtime/bindings/durable_object/types.ts";

/** Extra time the cell gets past the tenant's timeout before the control plane kills it. */
const DEADLINE_GRACE_MS = 2000;
/** Errors after which the cell may hold a thread that can't be stopped. */
const ZOMBIE_SUSPECTS = new Set([
  "ERR_TENANT_TIMEOUT",
  "ERR_TENANT_MEMORY",
  "ERR_TENANT_CPU_LIMIT",
]);
/** Errors that move the cell to idle CPU priority (`CellProcess.demote`). */
const MISBEHAVIOUR = new Set([
  ...ZOMBIE_SUSPECTS,
  "ERR_TENANT_CRASHED",
  "ERR_TENANT_EXCEPTION",
]);

/**
 * One version of a tenant, served by its cell.
 *
 * @example
 * ```ts ignore
 * const d = new CellDeployment(spec, cell, token); // cell: a started CellProcess
 * const res = await d.fetch(new Request("http://shop.example/"), "req-1");
 * ```
 */
export class CellDeployment {
  readonly startedAt: number = Date.now();
  readonly #spec: Omit<DeploymentSpec, "code">;
  readonly #token: string;
  #inFlight = 0;
  #draining = false;
  readonly #cpu: CellCpuMeter;

  constructor(
    spec: DeploymentSpec,
    readonly cell: CellProcess,
    token: string,
    private readonly onStopped: () => void = () => {},
  ) {
    const { code: _code, ...rest } = spec;
    this.#spec = rest;
    this.#token = token;
    cell.busy = () => this.#inFlight > 0;
    this.#cpu = new CellCpuMeter({
      tenant: spec.tenant,
      cpuMs: spec.limits.cpuMs ?? 0,
      run: () => cell.current,
      onBreach: (run, why) => {
        cell.demote(why);
        run.kill(why);
      },
    });
  }

  get tenant(): string {
    return this.#spec.tenant;
  }

  get version(): string {
    return this.#spec.version;
  }

  /** Relays a request to the tenant's `fetch` in the cell. */
  fetch(request: Request, requestId: string): Promise<Response> {
    const headers = new Headers(request.headers);
    headers.delete(CELL_OP_HEADER); // a client must never reach the cell's internal operations
    headers.delete(CELL_TOKEN_HEADER);
    headers.set(CELL_REQUEST_ID_HEADER, requestId);
    // fetch would otherwise send its own accept-encoding, one the client never sent
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
      return this.#call((run) => relayWebSocket(request, headers, run.client, this.tenant));
    }
    return this.#call((run) => {
      const init: RequestInit & { client: Deno.HttpClient; duplex: "half" } = {
        client: run.client,
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        duplex: "half", // the request body streams
      };
      return fetch(request.url, init);
    });
  }

  /** Runs a non-fetch event (`scheduled`, `queue`, …) in the cell. */
  async event(kind: string, payload: unknown, requestId: string): Promise<unknown> {
    const body = serialize({ kind, payload, requestId });
    const res = await this.#call((run) =>
      fetch("http://cell.invalid/", {
        client: run.client,
        method: "POST",
        headers: { [CELL_OP_HEADER]: "event", [CELL_TOKEN_HEADER]: this.#token },
        body,
      })
    );
    const out = deserialize(new Uint8Array(await res.arrayBuffer())) as
      | { ok: true; value: unknown }
      | { ok: false; error: ErrorPayload };
    if (!out.ok) throw WorkyError.from(out.error);
    return out.value;
  }

  /**
   * Fires a Durable Object alarm of this tenant in its cell, where its objects live (an
   * `AlarmTarget`: the control plane's timer service still owns the alarm timers).
   */
  fireAlarm(address: ObjectAddress, retryCount: number): Promise<ObjectResult> {
    const alarm: CellAlarm = { address, retryCount };
    return this.event(CELL_DO_ALARM, alarm, newRequestId()) as Promise<ObjectResult>;
  }

  /** Tells a running cell the control plane's port (refused to its tenant). */
  async setControlPlanePort(port: number): Promise<void> {
    const run = await this.cell.serving();
    const res = await fetch("http://cell.invalid/", {
      client: run.client,
      method: "POST",
      headers: { [CELL_OP_HEADER]: "port", [CELL_TOKEN_HEADER]: this.#token },
      body: String(port),
    });
    await res.body?.cancel();
  }

  /** Stops taking requests, waits for in-flight ones (bounded), then stops the cell. */
  async drain(graceMs: number = this.#spec.limits.timeoutMs): Promise<void> {
    this.#draining = true;
    const deadline = performance.now() + graceMs;
    while (this.#inFlight > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.cell.stop();
    this.onStopped();
  }

  stats() {
    const run = this.cell.current;
    return {
      tenant: this.tenant,
      version: this.version,
      workers: run && !run.exit ? 1 : 0,
      inFlight: this.#inFlight,
      recycled: this.cell.restarts,
      /** The cell runs at SCHED_IDLE (its tenant misbehaved, `CellProcess.demote`). */
      idle: this.cell.demoted,
      isolation: "cell" as const,
      pid: run?.pid,
    };
  }

  async #call(send: (run: CellIncarnation) => Promise<Response>): Promise<Response> {
    if (this.#draining) {
      throw new WorkyError("ERR_UNAVAILABLE", `tenant "${this.tenant}" is shutting down`);
    }
    this.#inFlight++;
    const metered = this.#cpu.begin();
    let streaming = false; // metered until the body has been relayed, not only the head
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const run = await this.cell.serving();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          run.kill(`it did not answer within ${this.#spec.limits.timeoutMs} ms + grace`);
          reject(
            new WorkyError(
              "ERR_TENANT_TIMEOUT",
              `tenant "${this.tenant}": its cell did not answer within ` +
                `${this.#spec.limits.timeoutMs} ms (limits.timeout_ms); the cell was restarted`,
            ),
          );
        }, this.#spec.limits.timeoutMs + DEADLINE_GRACE_MS);
      });
      let res: Response;
      try {
        res = await Promise.race([send(run), deadline]);
      } catch (err) {
        if (metered.breached) throw new WorkyError("ERR_TENANT_CPU_LIMIT", metered.breached);
        if (err instanceof WorkyError) throw err;
        throw await this.#crashed(run, err);
      }
      if (res.headers.has(CELL_ERROR_HEADER)) {
        const e = await cellError(res);
        if (MISBEHAVIOUR.has(e.code)) this.cell.demote(`its tenant failed with ${e.code}`);
        if (ZOMBIE_SUSPECTS.has(e.code)) this.#recycleIfSpinning(run, e.code);
        throw e;
      }
      // the tenant's code runs while a marked body streams: charge the event until it is over
      streaming = res.body !== null && res.headers.has(CELL_STREAMED_HEADER);
      return tenantResponse(res, streaming ? () => this.#cpu.end(metered) : undefined);
    } finally {
      clearTimeout(timer);
      if (!streaming) this.#cpu.end(metered);
      this.#inFlight--;
    }
  }

  /** The relay failed: name what happened to the cell. */
  async #crashed(run: CellIncarnation, err: unknown): Promise<WorkyError> {
    const status = await Promise.race([
      run.status,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 500)),
    ]);
    if (status && run.memoryKill) return new WorkyError("ERR_TENANT_MEMORY", run.memoryKill);
    if (status) {
      return new WorkyError(
        "ERR_TENANT_CRASHED",
        `tenant "${this.tenant}": its cell process (pid ${run.pid}) exited with code ` +
          `${status.code}${status.signal ? ` (signal ${status.signal})` : ""} while handling ` +
          `the request; it is being restarted`,
      );
    }
    return new WorkyError(
      "ERR_TENANT_CRASHED",
      `tenant "${this.tenant}": the relay to its cell (pid ${run.pid}) failed: ${
        (err as Error)?.message ?? err
      }`,
    );
  }

  /** After a stopped worker in the cell: recycles the cell if its thread keeps running. */
  #recycleIfSpinning(run: CellIncarnation, code: string) {
    this.#cpu.spinning(run).then((why) => {
      if (why) run.kill(`${code}: ${why}`);
    });
  }
}

/**
 * The tenant's response from a cell's answer: `content-encoding` back under its name, the cell's
 * stream marker gone, and a streamed body calling `bodyOver` when it is over (`onStreamEnd`).
 * An answer with neither is returned as it is, so its body keeps Deno's native relay.
 */
function tenantResponse(res: Response, bodyOver?: () => void): Response {
  const encoding = res.headers.get(CELL_CONTENT_ENCODING_HEADER);
  if (encoding === null && !bodyOver) return res;
  const headers = new Headers(res.headers);
  headers.delete(CELL_CONTENT_ENCODING_HEADER);
  headers.delete(CELL_STREAMED_HEADER);
  if (encoding !== null) headers.set("content-encoding", encoding);
  const body = bodyOver ? onStreamEnd(res.body!, bodyOver) : res.body;
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

async function cellError(res: Response): Promise<WorkyError> {
  let payload: unknown;
  try {
    payload = ((await res.json()) as { error?: unknown }).error;
  } catch {
    payload = undefined;
  }
  const e = WorkyError.from(payload ?? `cell answered ${res.status} without an error body`);
  const retry = res.headers.get("retry-after");
  if (retry) e.retryAfterMs = Number(retry) * 1000;
  return e;
}
