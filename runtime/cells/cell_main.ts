/**
 * A cell: a child process that runs ONE tenant's deployment, so that what its code does to the
 * process (a synchronous loop that `worker.terminate()` cannot stop, an allocation loop that
 * reaches V8's heap limit and aborts the process) ends this process only. Started by
 * `control-plane/cells/cell_process.ts` with a V8 heap cap and only the permissions the tenant
 * needs; see "Cells" in `docs/architecture.md`.
 *
 * - stdin: one JSON line ({@linkcode CellInit}), then nothing; EOF (the control plane is gone)
 *   stops the cell.
 * - stdout: JSON log lines (tenant `console.*` included); the one with `cellReady` says it serves.
 * - For a tenant with bindings it opens the control plane's libSQL database (`cell_storage.ts`:
 *   KV, queue producers, Durable Object leases and alarm timers: multi-process safe; the control
 *   plane's timer service fires the alarms and sends them here as {@linkcode CELL_DO_ALARM}
 *   events); a tenant without bindings never loads libSQL. It
 *   serves HTTP on `init.socketPath` (a unix socket). A request is the tenant's `fetch`; a
 *   request with the cell's token and `x-worky-cell-op: event` runs a non-fetch event whose
 *   payload and result are `node:v8`-serialized.
 * - A worker timed out or killed for memory leaves a thread `terminate()` could not stop, so the
 *   control plane recycles the cell; the memory watchdog's runaway verdict exits it at once.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import { errorResponse } from "../../control-plane/http/error_response.ts";
import { Runtime } from "../runtime.ts";
import { isTenantStream } from "../worker_handle.ts";
import { JsonLogger } from "../logger.ts";
import { TenantLogLimiter } from "../log_limiter.ts";
import { WorkyError } from "../errors.ts";
import { protectControlPlanePort, protectEgressProxyPort } from "../egress.ts";
import type { Deployment } from "../deployment.ts";
import type { CellStorage } from "./cell_storage.ts";
import {
  CELL_CONTENT_ENCODING_HEADER,
  CELL_DO_ALARM,
  CELL_ERROR_HEADER,
  CELL_EXIT_RUNAWAY,
  CELL_EXIT_START_FAILED,
  CELL_FAILED_FIELD,
  CELL_MARK_FIELD,
  CELL_OP_HEADER,
  CELL_READY_FIELD,
  CELL_REQUEST_ID_HEADER,
  CELL_STREAMED_HEADER,
  CELL_TOKEN_HEADER,
  type CellAlarm,
  type CellInit,
} from "./cell_protocol.ts";

const logger = new TenantLogLimiter(new JsonLogger()); // bounded at the source, as in the host
const stdin = Deno.stdin.readable.getReader();
const init = await readInit();
const tenant = init.spec.tenant;
let unprotect = init.controlPlanePort ? protectControlPlanePort(init.controlPlanePort) : () => {};

// the database and the state services only for a tenant with a binding: loading libSQL is most of
// a cell's start, paid again on every restart (`cell_storage.ts`)
const storage: CellStorage | undefined = init.spec.bindings.length > 0
  ? await (await import("./cell_storage.ts")).openCellStorage(init, logger)
  : undefined;
const durableObjects = storage?.durableObjects;
const remoteProxy = init.egressProxy;
// tenants reach the control plane's proxy only through the client the bootstrap builds
if (remoteProxy) protectEgressProxyPort(remoteProxy.port);
const runtime = new Runtime({
  logger,
  spares: 0, // one tenant: its pool is the only user of its permission set
  // an allowlist cell can't run a proxy (it must dial any checked address): the control plane's
  egressProxy: remoteProxy && { register: () => ({ ...remoteProxy, release() {} }) },
  services: {
    ...storage?.services,
    secrets: { forTenant: () => Promise.resolve(init.secrets) },
  },
});
runtime.watchdog.onRunaway = (_tenant, mb) => {
  logger.log({
    level: "error",
    msg: `cell of tenant "${tenant}": a worker ran away with ${mb} MiB; the cell exits`,
    tenant,
  });
  Deno.exit(CELL_EXIT_RUNAWAY);
};

let deployment: Deployment;
try {
  deployment = await runtime.deploy(init.spec);
} catch (err) {
  const e = WorkyError.from(err);
  logger.log({
    level: "error",
    msg: e.message,
    tenant,
    [CELL_FAILED_FIELD]: e.toJSON(),
    [CELL_MARK_FIELD]: init.mark,
  });
  Deno.exit(CELL_EXIT_START_FAILED);
}

try {
  await Deno.remove(init.socketPath);
} catch { /* not there */ }
const listening = Promise.withResolvers<void>();
const server = Deno.serve({
  path: init.socketPath,
  onListen: () => listening.resolve(),
  onError: (err) => errorResponse(err, "cell"),
}, handle);
await listening.promise;
logger.log({
  level: "info",
  msg: `cell of tenant "${tenant}" serving on ${init.socketPath}`,
  tenant,
  pid: Deno.pid,
  [CELL_READY_FIELD]: true,
  [CELL_MARK_FIELD]: init.mark,
});

Deno.addSignalListener("SIGTERM", () => void shutdown());
// the control plane closed our stdin (it stopped or died): drain and exit
for (;;) {
  const { done } = await stdin.read().catch(() => ({ done: true }));
  if (done) break;
}
await shutdown();

function handle(request: Request): Response | Promise<Response> {
  const op = request.headers.get(CELL_OP_HEADER);
  if (op !== null) return internal(op, request);
  const requestId = request.headers.get(CELL_REQUEST_ID_HEADER) ?? crypto.randomUUID();
  return deployment.fetch(request, requestId).then(forRelay, (err) => failed(err, requestId));
}

/**
 * Marks a body the tenant's code still produces (only the cell sets that header), and hides
 * `content-encoding` from the relay's fetch, which would decompress the body.
 */
function forRelay(res: Response): Response {
  if (isTenantStream(res)) res.headers.set(CELL_STREAMED_HEADER, "1");
  else res.headers.delete(CELL_STREAMED_HEADER); // a tenant's own header of that name
  const encoding = res.headers.get("content-encoding");
  if (encoding === null) return res;
  const headers = new Headers(res.headers);
  headers.delete("content-encoding");
  headers.set(CELL_CONTENT_ENCODING_HEADER, encoding);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

async function internal(op: string, request: Request): Promise<Response> {
  if (request.headers.get(CELL_TOKEN_HEADER) !== init.token) {
    return failed(new WorkyError("ERR_FORBIDDEN", "cell operation without the cell's token"), "");
  }
  if (op === "event") {
    const { kind, payload, requestId } = deserialize(
      new Uint8Array(await request.arrayBuffer()),
    ) as { kind: string; payload: unknown; requestId: string };
    try {
      const value = kind === CELL_DO_ALARM && durableObjects
        ? await fireAlarm(payload as CellAlarm)
        : await deployment.event(kind, payload, requestId);
      return new Response(serialize({ ok: true, value }));
    } catch (err) {
      return new Response(serialize({ ok: false, error: WorkyError.from(err).toJSON() }));
    }
  }
  if (op === "port") {
    unprotect();
    unprotect = protectControlPlanePort(Number(await request.text()));
    return new Response("ok");
  }
  return failed(new WorkyError("ERR_BAD_REQUEST", `unknown cell operation "${op}"`), "");
}

/** A due alarm the control plane's timer service sent: it fires in this cell's directory. */
function fireAlarm({ address, retryCount }: CellAlarm): Promise<unknown> {
  return durableObjects!.directory.fireAlarm(address, retryCount);
}

function failed(err: unknown, requestId: string): Response {
  const res = errorResponse(err, requestId);
  res.headers.set(CELL_ERROR_HEADER, "1");
  return res;
}

async function readInit(): Promise<CellInit> {
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await stdin.read();
    if (done) throw new Error("cell: stdin ended before the init line");
    text += decoder.decode(value, { stream: true });
    const nl = text.indexOf("\n");
    if (nl >= 0) return JSON.parse(text.slice(0, nl)) as CellInit;
  }
}

async function shutdown(): Promise<never> {
  const timer = setTimeout(() => Deno.exit(0), 2000);
  await deployment.drain(1000).catch(() => {});
  await storage?.close().catch(() => {}); // evicts its objects, releasing their leases
  await server.shutdown().catch(() => {});
  await Deno.remove(init.socketPath).catch(() => {});
  clearTimeout(timer);
  runtime.close();
  Deno.exit(0);
}
