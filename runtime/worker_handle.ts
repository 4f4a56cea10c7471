/**
 * The host's side of one tenant worker: sends events, matches replies,
 * serves binding RPC, forwards logs, enforces the per-event wall-clock limit,
 * and notices when the worker is poisoned or gone.
 */
import { setImmediate } from "node:timers";
import { type ErrorCode, WorkyError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import {
  BIG_BODY,
  H_BATCH,
  H_EVENT,
  H_FETCH,
  H_INIT,
  H_RPC_RESULT,
  type HeaderPairs,
  headerPairs,
  type HostMessage,
  type InitMessage,
  W_BATCH,
  W_BOOTED,
  W_ERROR,
  W_EVENT_RESULT,
  W_FATAL,
  W_INIT_ERROR,
  W_LOG,
  W_MEMORY,
  W_READY,
  W_RESPONSE,
  W_RPC,
  W_SETTLED,
  W_UNCAUGHT,
  W_UPGRADE,
  W_WS,
  type WireError,
  type WorkerMessage,
} from "./protocol.ts";
import type { BindingHost } from "./bindings/types.ts";
import { acceptUpgrade, WorkerSockets } from "./websocket/relay.ts";
import { type WorkerThread, workerThread, zombieThreads } from "./memory/zombie_threads.ts";
import { demoteToIdle, HEAVY_EVENT_NS, lowerPriority } from "./memory/cpu_priority.ts";
import { onStreamEnd } from "./stream_end.ts";
import { threadCpuNs } from "./memory/thread_cpu.ts";

export type WorkerState = "starting" | "ready" | "dead";

/**
 * Why a worker was stopped, when it was the tenant's doing: an event past its time limit
 * (`timeout`; `cpu` when it burned 50 ms of CPU meanwhile, or passed
 * `cpu_ms`), memory past its limit, or its code ending the worker (`exit`: `Deno.exit`).
 */
export type Misbehaviour = "timeout" | "cpu" | "memory" | "exit";

export interface WorkerHandleOptions {
  tenant: string;
  worker: Worker;
  init: InitMessage;
  bindings: ReadonlyMap<string, BindingHost>;
  logger: Logger;
  /** Wall-clock limit per event, and the bound on `waitUntil` work after it. */
  timeoutMs: number;
  /**
   * CPU-ish limit per event, ms (0 or absent = none): the worker thread's CPU time while the
   * event is in flight, shared equally among the events in flight at each sweep.
   */
  cpuMs?: number;
  /**
   * Called once when the worker dies for any reason; `misbehaved` says which limit it broke when
   * it was stopped for one that protects everyone (time, CPU, memory), else null.
   */
  onDead(handle: WorkerHandle, reason: string, misbehaved: Misbehaviour | null): void;
  /**
   * Called with the size of each complete body of at least `BIG_BODY` bytes the worker hands
   * over (the ones that cross as a transferred buffer onto this thread's heap), and for a
   * streamed body with its bytes so far each time `BIG_BODY` more arrived here (every chunk of
   * a transferred stream lands on this heap too).
   */
  onBigBody?(bytes: number): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: WorkyError): void;
  /** `performance.now()` past which the event (or its waitUntil work) is over time. */
  deadline: number;
  requestId: string;
  responded: boolean;
  /** The client's request of a fetch event (a WebSocket answer upgrades it). */
  request?: Request;
  /** CPU-ish time charged to this event so far, ns (see `WorkerHandleOptions.cpuMs`). */
  cpuNs: number;
  /**
   * Its body is a stream the tenant's code still produces: the event stays in flight (metered,
   * its worker not retired under it) until the stream is over.
   */
  streaming?: AbortController;
  /** The worker said the event settled while its body still streamed. */
  settledEarly?: boolean;
}

let nextEventId = 1;

/** Responses whose body a worker still produces (see `Pending.streaming`). */
const tenantStreams = new WeakSet<Response>();

/**
 * True when `res` came from a worker with a body its code still produces: a cell marks those
 * for the control plane, which then meters the event until the body is over.
 */
export function isTenantStream(res: Response): boolean {
  return tenantStreams.has(res);
}

/**
 * A response whose body is bytes the worker transferred to this thread, without copying them:
 * `new Response(bytes)` copies its body (the Fetch spec's "copy of the bytes"), and on the
 * thread that serves every tenant an 8 MB copy is milliseconds the others wait (measured: a
 * tenant answering 8 MB at 50 req/s cost this thread 39 % of a core; without the copy, 11 %).
 * A one-chunk stream hands the same buffer to the socket; `content-length` keeps the response
 * unchunked, as it would have been.
 */
function bytesResponse(
  bytes: Uint8Array<ArrayBuffer>,
  status: number,
  statusText: string,
  pairs: HeaderPairs,
): Response {
  const headers = new Headers(pairs);
  headers.set("content-length", String(bytes.byteLength));
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
  return new Response(body, { status, statusText, headers });
}

/**
 * `stream` as it reaches this thread, reporting its bytes to `report` in steps of at least
 * `BIG_BODY` (and the remainder of a body that reached it). Small streamed bodies report nothing,
 * like small inline ones.
 */
function counted(
  stream: ReadableStream<Uint8Array>,
  report: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  let total = 0, unreported = 0;
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        total += chunk.byteLength;
        unreported += chunk.byteLength;
        if (unreported >= BIG_BODY) {
          report(unreported);
          unreported = 0;
        }
        c.enqueue(chunk);
      },
      flush() {
        if (total >= BIG_BODY && unreported > 0) report(unreported);
      },
    }),
  );
}

/**
 * One interval for every worker's event deadlines, instead of a timer per
 * event (a timer costs an allocation and two calls on the hot path). Runs
 * only while some event is pending; a deadline fires at most SWEEP_MS late.
 */
const SWEEP_MS = 25;
const deadlines = new (class {
  #handles = new Set<WorkerHandle>();
  #timer: ReturnType<typeof setInterval> | undefined;
  watch(handle: WorkerHandle) {
    this.#handles.add(handle);
    this.#timer ??= setInterval(() => this.#sweep(), SWEEP_MS);
  }
  #sweep() {
    const now = performance.now();
    for (const h of this.#handles) if (!h.sweep(now)) this.#handles.delete(h);
    if (this.#handles.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
})();

export class WorkerHandle {
  state: WorkerState = "starting";
  /** Events started and not yet settled (response sent and waitUntil done). */
  inFlight = 0;
  /** Resolves when the tenant module loaded; rejects with its load error. */
  readonly ready: Promise<void>;
  readonly #o: WorkerHandleOptions;
  readonly #pending = new Map<number, Pending>();
  #readyResolve!: () => void;
  #readyReject!: (e: WorkyError) => void;
  /** When the worker last finished an event (for idle retirement). */
  lastActive = performance.now();
  /** Messages received from the worker: the memory watchdog's liveness signal. */
  messages = 0;
  /** WebSockets this worker holds, relayed to real client sockets (`websocket/relay.ts`). */
  readonly sockets: WorkerSockets = new WorkerSockets((msg, transfer) => this.#post(msg, transfer));

  constructor(options: WorkerHandleOptions) {
    this.#o = options;
    this.ready = new Promise((res, rej) => {
      this.#readyResolve = res;
      this.#readyReject = rej;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
    const w = options.worker;
    w.onmessage = (e: MessageEvent<WorkerMessage>) => (this.messages++, this.#onMessage(e.data));
    w.onerror = (e) => {
      e.preventDefault();
      this.kill(`worker error: ${e.message}`, "ERR_TENANT_CRASHED");
    };
    w.onmessageerror = () => this.kill("undecodable message from worker", "ERR_TENANT_CRASHED");
    this.#post([H_INIT, options.init]);
  }

  get tenant(): string {
    return this.#o.tenant;
  }

  /** Sends a request (`headers`: its pairs, when the caller has them); resolves with the response. */
  fetch(
    request: Request,
    requestId: string,
    headers: HeaderPairs = headerPairs(request.headers),
  ): Promise<Response> {
    const body = request.body;
    return this.#start(requestId, (id) =>
      this.#enqueue(
        [H_FETCH, id, request.method, request.url, headers, body, requestId],
        body ? [body] : undefined,
      ), request) as Promise<Response>;
  }

  /** Sends a non-fetch event (scheduled, queue, …); resolves with the handler's result. */
  event(kind: string, payload: unknown, requestId: string): Promise<unknown> {
    return this.#start(requestId, (id) => this.#enqueue([H_EVENT, id, kind, payload, requestId]));
  }

  /**
   * Stops the worker now; everything in flight fails with `code`. `misbehaved` (by default
   * "memory" for a memory kill) tells the pool which limit it broke (`worker_pool.ts`).
   */
  kill(
    reason: string,
    code: ErrorCode = "ERR_TENANT_CRASHED",
    misbehaved: Misbehaviour | null = code === "ERR_TENANT_MEMORY" ? "memory" : null,
  ) {
    if (this.state === "dead") return;
    this.state = "dead";
    this.#o.worker.terminate();
    zombieThreads().watch(this.#o.worker, this.tenant, reason); // terminate() can't stop a loop
    const err = new WorkyError(code, `tenant "${this.tenant}": ${reason}`);
    this.#readyReject(err);
    for (const [id, p] of this.#pending) {
      if (!p.responded) p.reject(err);
      this.#pending.delete(id);
      p.streaming?.abort(err); // its body ends with the worker
    }
    this.inFlight = 0;
    this.sockets.closeAll(1011, `worker stopped: ${reason}`);
    this.#o.onDead(this, reason, misbehaved);
  }

  #idle = false;
  /**
   * Moves this worker's OS thread to SCHED_IDLE (`memory/cpu_priority.ts`): it runs only on
   * cores nobody else wants. Once per worker; a no-op without `chrt` or a known thread.
   */
  demote(): void {
    if (this.#idle || this.state === "dead") return;
    this.#idle = true;
    const thread = this.thread;
    if (thread) void demoteToIdle(thread.tid);
  }

  /** The worker's OS thread, where known (Linux). */
  get thread(): WorkerThread | undefined {
    return workerThread(this.#o.worker);
  }

  #start(requestId: string, send: (id: number) => void, request?: Request): Promise<unknown> {
    if (this.state === "dead") {
      return Promise.reject(
        new WorkyError("ERR_TENANT_CRASHED", `tenant "${this.tenant}": worker is gone`),
      );
    }
    const id = nextEventId++;
    if (this.inFlight++ === 0) {
      this.#cpuSeenNs = undefined; // idle CPU is nobody's event's
      this.#unansweredCpuNs = 0;
    }
    return new Promise((resolve, reject) => {
      const deadline = performance.now() + this.#o.timeoutMs;
      this.#pending.set(id, {
        resolve,
        reject,
        deadline,
        requestId,
        responded: false,
        request,
        cpuNs: 0,
      });
      deadlines.watch(this);
      send(id);
    });
  }

  #timeout(id: number) {
    const p = this.#pending.get(id);
    if (!p) return;
    if (p.streaming) {
      // a long body is no timeout (a download, server-sent events); cpu_ms still applies
      p.deadline = performance.now() + this.#o.timeoutMs;
      return;
    }
    if (p.responded) {
      // waitUntil work ran past its bound: stop counting it, keep the worker.
      this.#o.logger.log({
        level: "warn",
        msg: `waitUntil work still running after ${this.#o.timeoutMs} ms; no longer awaited`,
        tenant: this.tenant,
        requestId: p.requestId,
      });
      this.#settle(id);
      return;
    }
    // Reject this event first so it gets the timeout error, then recycle the worker.
    this.#pending.delete(id);
    p.reject(
      new WorkyError(
        "ERR_TENANT_TIMEOUT",
        `tenant "${this.tenant}" did not respond within ${this.#o.timeoutMs} ms`,
      ),
    );
    // a timed-out event that burned CPU is a loop of the tenant's own, not a slow upstream
    const burned = p.cpuNs >= HEAVY_EVENT_NS || this.#unansweredCpuNs >= HEAVY_EVENT_NS
      ? "cpu"
      : "timeout";
    this.kill(`event exceeded ${this.#o.timeoutMs} ms`, "ERR_TENANT_CRASHED", burned);
  }

  /** Times out what is past its deadline or its CPU; false once nothing is left to watch. */
  sweep(now: number): boolean {
    for (const [id, p] of this.#pending) {
      if (p.deadline <= now) this.#timeout(id);
    }
    if (this.#o.cpuMs && this.#pending.size > 0 && this.state !== "dead") this.#meterCpu();
    return this.state !== "dead" && this.#pending.size > 0;
  }

  #yielding = false;
  /**
   * An event of this worker used {@link HEAVY_EVENT_NS} of CPU: the worker's thread drops to
   * nice 19 for the rest of its life, so long CPU-bound events yield to short ones (other
   * tenants', and the host thread relaying every request). Nice 19, not SCHED_IDLE: a legitimate
   * heavy tenant still progresses on a busy machine. Raising it back needs privileges.
   */
  #yieldCpu(tid: number) {
    this.#yielding = true;
    lowerPriority(tid, 19);
  }

  /** The thread's CPU time at the last sweep, ns (undefined: not read since it went busy). */
  #cpuSeenNs: number | undefined;

  /**
   * CPU the thread used since the worker last answered an event, ns (while events are in
   * flight). The equal shares below dilute a loop: the events queued behind one `while (true)`
   * each get a share of its CPU, so under a paced storm (16 events on the worker) none reached
   * {@link HEAVY_EVENT_NS} before the 300 ms timeout, and the loop spun at normal priority and
   * counted as a slow upstream (a second death, a second zombie thread, before its move; measured,
   * session 18). A thread that burns that much without answering anything runs one long stretch
   * of its tenant's code, whichever event it is; a busy tenant that keeps answering never gets
   * there.
   */
  #unansweredCpuNs = 0;

  /**
   * Charges the worker thread's CPU since the last sweep to the events in flight, in equal
   * shares (a worker interleaves its events; which one burned it is unknowable from here, so
   * the limit is CPU-ish), and stops the worker when an event passes `cpuMs`.
   */
  #meterCpu() {
    const tid = this.thread?.tid;
    const cpu = tid === undefined ? undefined : threadCpuNs(tid);
    if (cpu === undefined) return;
    const seen = this.#cpuSeenNs;
    this.#cpuSeenNs = cpu;
    if (seen === undefined) return;
    this.#unansweredCpuNs += cpu - seen;
    if (this.#unansweredCpuNs >= HEAVY_EVENT_NS && !this.#yielding) this.#yieldCpu(tid!);
    const share = (cpu - seen) / this.#pending.size;
    const limitNs = this.#o.cpuMs! * 1e6;
    for (const [id, p] of this.#pending) {
      p.cpuNs += share;
      if (p.cpuNs >= HEAVY_EVENT_NS && !this.#yielding) this.#yieldCpu(tid!);
      if (p.cpuNs < limitNs) continue;
      this.#pending.delete(id);
      const msg = `an event used more than ${this.#o.cpuMs} ms of CPU (limits.cpu_ms)`;
      const err = new WorkyError("ERR_TENANT_CPU_LIMIT", `tenant "${this.tenant}": ${msg}`);
      if (!p.responded) p.reject(err);
      p.streaming?.abort(err); // a body still streaming stops here
      this.kill(msg, "ERR_TENANT_CRASHED", "cpu");
      return;
    }
  }

  #settle(id: number) {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#unansweredCpuNs = 0;
    this.#pending.delete(id);
    this.inFlight--;
    this.lastActive = performance.now();
    if (this.#retireReason !== null && this.inFlight <= 0) {
      this.kill(`retired: ${this.#retireReason}`);
    }
  }

  /** A streamed body is over: its event settles now, or bounds its waitUntil work from now. */
  #streamOver(id: number) {
    const p = this.#pending.get(id);
    if (!p?.streaming) return;
    p.streaming = undefined;
    if (p.settledEarly) this.#settle(id);
    else p.deadline = performance.now() + this.#o.timeoutMs;
  }

  /** The event answered and settled in one message: forget it now. */
  #take(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p || p.responded) return undefined;
    this.#settle(id);
    return p;
  }

  #responded(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p || p.responded) return undefined;
    p.responded = true;
    this.#unansweredCpuNs = 0;
    p.deadline = performance.now() + this.#o.timeoutMs; // now bounds the waitUntil work
    return p;
  }

  /** Sends now, after anything queued (order is kept). */
  #post(msg: HostMessage, transfer?: Transferable[]) {
    if (this.#outbox.length) this.#flush();
    this.#o.worker.postMessage(msg, transfer ?? []);
  }

  /**
   * Sends an event: at once when it is the worker's only one, else queued and
   * sent with the others started in this turn as one H_BATCH on the next
   * macrotask. Under load that turns ~5 messages into one (measured: +20%
   * requests/s); an idle worker pays no delay.
   */
  #enqueue(msg: HostMessage, transfer?: Transferable[]) {
    if (this.inFlight <= 1 && this.#outbox.length === 0) {
      this.#o.worker.postMessage(msg, transfer ?? []);
      return;
    }
    this.#outbox.push(msg);
    if (transfer) this.#outboxTransfer.push(...transfer);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushLater);
    }
  }

  #outbox: HostMessage[] = [];
  #outboxTransfer: Transferable[] = [];
  #flushQueued = false;
  readonly #flushLater = () => {
    this.#flushQueued = false;
    if (this.state !== "dead") this.#flush();
  };

  #flush() {
    const batch = this.#outbox, transfer = this.#outboxTransfer;
    this.#outbox = [];
    this.#outboxTransfer = [];
    if (batch.length === 0) return;
    this.#o.worker.postMessage(batch.length === 1 ? batch[0] : [H_BATCH, batch], transfer);
  }

  #onMessage(m: WorkerMessage) {
    switch (m[0]) {
      case W_BATCH:
        for (const one of m[1]) this.#onMessage(one);
        return;
      case W_BOOTED: // a spare taken before it finished booting
        return;
      case W_RESPONSE: {
        const status = m[2];
        const nullBody = status === 204 || status === 205 || status === 304 || status === 101;
        const bytes = m[5];
        const streamed = !nullBody && !bytes && m[6] !== null;
        const p = m[7] && !streamed ? this.#take(m[1]) : this.#responded(m[1]);
        if (!p) return;
        if (!nullBody && bytes instanceof Uint8Array && bytes.byteLength >= BIG_BODY) {
          this.#o.onBigBody?.(bytes.byteLength);
          p.resolve(bytesResponse(bytes, status, m[3], m[4]));
          return;
        }
        let stream = m[6];
        if (streamed && stream) {
          if (this.#o.onBigBody) stream = counted(stream, this.#o.onBigBody);
          p.streaming = new AbortController();
          p.settledEarly = m[7];
          const id = m[1];
          stream = onStreamEnd(stream, () => this.#streamOver(id), p.streaming.signal);
        }
        const res = new Response(nullBody ? null : (bytes ?? stream), {
          status,
          statusText: m[3],
          headers: m[4],
        });
        if (streamed) tenantStreams.add(res);
        p.resolve(res);
        return;
      }
      case W_SETTLED: {
        const p = this.#pending.get(m[1]);
        if (p?.streaming) p.settledEarly = true; // settles when its body is over
        else this.#settle(m[1]);
        return;
      }
      case W_WS:
        this.sockets.fromWorker(m);
        return;
      case W_UPGRADE: {
        const p = m[4] ? this.#take(m[1]) : this.#responded(m[1]);
        if (!p) return;
        try {
          p.resolve(acceptUpgrade(p.request, m[2], m[3], this.tenant));
        } catch (err) {
          p.reject(WorkyError.from(err));
        }
        return;
      }
      case W_RPC:
        this.#rpc(m[1], m[2], m[3], m[4]);
        return;
      case W_LOG:
        this.#o.logger.log({ level: m[1], msg: m[3], tenant: this.tenant, requestId: m[2] });
        return;
      case W_ERROR: {
        const p = this.#responded(m[1]);
        if (!p) return;
        this.#logError(m[2], p.requestId);
        // The worker keeps serving, as on Workers and Deno Deploy: an exception is the event's
        // 500, not a reason to pay a respawn (which blocks the host's thread ~11 ms).
        p.reject(fromWire(m[2], this.tenant));
        return;
      }
      case W_EVENT_RESULT: {
        const p = this.#responded(m[1]);
        if (!p) return;
        if (m[2]) p.resolve(m[3]);
        else {
          this.#logError(m[3] as WireError, p.requestId);
          p.reject(fromWire(m[3] as WireError, this.tenant));
        }
        return;
      }
      case W_READY:
        if (this.state === "starting") this.state = "ready";
        this.#readyResolve();
        return;
      case W_INIT_ERROR: {
        const err = new WorkyError(
          "ERR_BUNDLE_INVALID",
          `tenant "${this.tenant}" failed to start: ${m[1].stack ?? m[1].message}`,
        );
        this.#readyReject(err);
        this.#logError(m[1], null);
        this.kill("module failed to load", "ERR_TENANT_CRASHED");
        return;
      }
      case W_MEMORY: {
        // over limits.memory_mb: stop it before it reaches V8's hard limit (which aborts the process)
        const mb = (n: number) => `${Math.round(n / 1048576)} MiB`;
        const msg = `worker used ${mb(m[1])} of memory, over its limit of ${
          mb(m[2])
        } (limits.memory_mb)`;
        this.#o.logger.log({ level: "warn", msg, code: "ERR_TENANT_MEMORY", tenant: this.tenant });
        this.kill(msg, "ERR_TENANT_MEMORY");
        return;
      }
      case W_UNCAUGHT:
        this.#logError(m[1], m[2]);
        return;
      case W_FATAL:
        this.#logError(m[1], null);
        // the tenant ended its worker (Deno.exit): the event(s) in flight get a 500 saying so
        this.kill(m[1].message, "ERR_TENANT_CRASHED", "exit");
        return;
    }
  }

  /** Takes no new events; dies when the current ones settle. */
  /** Why the worker is retiring (takes no new events, dies when idle); null while it serves. */
  #retireReason: string | null = null;
  retire(reason: string) {
    if (this.#retireReason !== null || this.state === "dead") return;
    this.#retireReason = reason;
    this.#o.onDead(this, reason, null); // the pool replaces it now
    if (this.inFlight <= 0) this.kill(`retired: ${reason}`);
  }

  get accepting(): boolean {
    return this.state !== "dead" && this.#retireReason === null;
  }

  async #rpc(id: number, binding: string, method: string, args: unknown[]) {
    let ok = true;
    let value: unknown;
    try {
      const host = this.#o.bindings.get(binding);
      if (!host) throw new WorkyError("ERR_NOT_FOUND", `env.${binding} is not a binding`);
      value = await host.call(method, args, { tenant: this.tenant });
    } catch (err) {
      ok = false;
      value = WorkyError.from(err).toJSON();
    }
    if (this.state !== "dead") this.#post([H_RPC_RESULT, id, ok, value]);
  }

  #logError(e: WireError, requestId: string | null) {
    this.#o.logger.log({
      level: "error",
      msg: e.stack ?? e.message,
      code: e.code,
      tenant: this.tenant,
      requestId,
    });
  }
}

function fromWire(e: WireError, tenant: string): WorkyError {
  const err = WorkyError.from({ code: e.code, message: e.message });
  if (err.code === "ERR_INTERNAL") {
    return new WorkyError("ERR_TENANT_EXCEPTION", `tenant "${tenant}" threw: ${e.message}`);
  }
  return err.code === "ERR_TENANT_EXCEPTION"
    ? new WorkyError("ERR_TENANT_EXCEPTION", `tenant "${tenant}" threw ${e.message}`)
    : err;
}
