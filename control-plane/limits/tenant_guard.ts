/**
 * The ingress checks of `[tenants.<name>.limits]`, in order: header size
 * (431), declared body size (413), per-client-IP and tenant-wide rate limits
 * (429 with `retry-after`), then concurrent requests (wait up to `queue_ms`,
 * then 503). A body sent without `content-length` is counted as it streams
 * and errors past the limit.
 *
 * State lives per `LimitsConfig` object, so a redeploy with a new config
 * starts fresh and an unchanged one keeps its counters.
 */
import type { Clock } from "../../runtime/clock.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { type HeaderPairs, headerPairs } from "../../runtime/protocol.ts";
import { errorResponse } from "../http/error_response.ts";
import { ConcurrencyGate } from "./concurrency_gate.ts";
import { completeLimits, type IsolationLimits } from "./limits_config.ts";
import { KeyedBuckets, TokenBucket } from "./token_bucket.ts";

interface TenantState {
  limits: IsolationLimits;
  gate: ConcurrencyGate;
  tenantBucket?: TokenBucket;
  ipBuckets?: KeyedBuckets;
}

/** Runs one admitted request (the deployment's fetch); `headers` are its header pairs. */
export type RunRequest = (request: Request, headers: HeaderPairs) => Promise<Response>;

/** Guards one request of tenant `name`; answers the refusal itself. */
export type TenantGuard = (
  name: string,
  limits: IsolationLimits,
  request: Request,
  clientIp: string,
  requestId: string,
  run: RunRequest,
) => Promise<Response> | Response;

/** Bytes of the request line and headers as they were on the wire (HTTP/1.1 framing). */
function headerBytes(request: Request, headers: HeaderPairs): number {
  let n = request.method.length + request.url.length + 12;
  for (const [k, v] of headers) n += k.length + v.length + 4;
  return n;
}

function refuse(err: WorkyError, requestId: string, retryAfterMs?: number): Response {
  const res = errorResponse(err, requestId);
  if (retryAfterMs !== undefined) {
    res.headers.set("retry-after", String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
  return res;
}

/** A body stream that errors once more than `max` bytes went through. */
function limitBody(body: ReadableStream<Uint8Array>, max: number, name: string) {
  let seen = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        seen += chunk.byteLength;
        if (seen > max) {
          ctl.error(
            new WorkyError(
              "ERR_PAYLOAD_TOO_LARGE",
              `tenant "${name}": request body exceeds ${max} bytes (limits.max_body_bytes)`,
            ),
          );
        } else ctl.enqueue(chunk);
      },
    }),
  );
}

/**
 * Builds the guard.
 *
 * @example
 * ```ts ignore
 * const guard = createTenantGuard({ clock: systemClock });
 * return guard(slot.config.name, slot.config.limits, request, ip, requestId, (r, headers) => slot.current.fetch(r, requestId, headers));
 * ```
 */
export function createTenantGuard(options: { clock: Clock }): TenantGuard {
  const states = new WeakMap<IsolationLimits, TenantState>();
  const stateOf = (config: IsolationLimits): TenantState => {
    let s = states.get(config);
    if (!s) {
      const limits = completeLimits(config);
      s = {
        limits,
        gate: new ConcurrencyGate(limits.maxConcurrentRequests, limits.queueMs),
      };
      if (limits.requestsPerSecond > 0) {
        s.tenantBucket = new TokenBucket(
          limits.requestsPerSecond,
          Math.max(1, limits.requestsPerSecond),
          options.clock,
        );
      }
      if (limits.requestsPerSecondPerIp > 0) {
        s.ipBuckets = new KeyedBuckets(limits.requestsPerSecondPerIp, options.clock);
      }
      states.set(config, s);
    }
    return s;
  };

  const admitted = (s: TenantState, request: Request, headers: HeaderPairs, run: RunRequest) => {
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        s.gate.leave();
      }
    };
    try {
      return run(request, headers).finally(release);
    } catch (err) {
      release();
      throw err;
    }
  };

  return function guard(name, config, request, clientIp, requestId, run) {
    const s = stateOf(config);
    const limits = s.limits;
    const headers = headerPairs(request.headers); // once: the worker gets the same pairs
    if (headerBytes(request, headers) > limits.maxHeaderBytes) {
      return refuse(
        new WorkyError(
          "ERR_HEADERS_TOO_LARGE",
          `tenant "${name}": request line and headers exceed ${limits.maxHeaderBytes} bytes ` +
            `(limits.max_header_bytes)`,
        ),
        requestId,
      );
    }
    if (request.body) {
      const declared = request.headers.get("content-length");
      if (declared !== null) {
        if (Number(declared) > limits.maxBodyBytes) {
          return refuse(
            new WorkyError(
              "ERR_PAYLOAD_TOO_LARGE",
              `tenant "${name}": request body of ${declared} bytes exceeds ${limits.maxBodyBytes} ` +
                `(limits.max_body_bytes)`,
            ),
            requestId,
          );
        }
      } else {
        request = new Request(request.url, {
          method: request.method,
          headers: request.headers,
          body: limitBody(request.body, limits.maxBodyBytes, name),
          // @ts-ignore: duplex is needed for streaming bodies
          duplex: "half",
        });
      }
    }
    if (s.ipBuckets) {
      const wait = s.ipBuckets.take(clientIp);
      if (wait > 0) {
        return refuse(
          new WorkyError(
            "ERR_RATE_LIMITED",
            `tenant "${name}": more than ${limits.requestsPerSecondPerIp} requests per second ` +
              `from this client (limits.requests_per_second_per_ip)`,
          ),
          requestId,
          wait,
        );
      }
    }
    if (s.tenantBucket) {
      const wait = s.tenantBucket.take();
      if (wait > 0) {
        return refuse(
          new WorkyError(
            "ERR_RATE_LIMITED",
            `tenant "${name}": more than ${limits.requestsPerSecond} requests per second ` +
              `(limits.requests_per_second)`,
          ),
          requestId,
          wait,
        );
      }
    }
    if (s.gate.tryEnter()) return admitted(s, request, headers, run);
    return s.gate.wait().then((ok) => {
      if (ok) return admitted(s, request, headers, run);
      return refuse(
        new WorkyError(
          "ERR_TENANT_OVERLOADED",
          `tenant "${name}" has ${limits.maxConcurrentRequests} requests in flight ` +
            `(limits.max_concurrent_requests); try again shortly`,
        ),
        requestId,
        1000,
      );
    });
  };
}
