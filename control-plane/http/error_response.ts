/**
 * Maps any error to the JSON error response of the HTTP edge:
 * `{ "error": { "code", "message" }, "requestId" }` with the code's status.
 * System errors don't leak internals to the client; they are logged instead.
 */
import { WorkyError } from "../../runtime/errors.ts";

export function errorResponse(err: unknown, requestId: string): Response {
  const e = WorkyError.from(err);
  const message = e.code === "ERR_INTERNAL" ? "internal error; see the server log" : e.message;
  const res = Response.json(
    { error: { code: e.code, message }, requestId },
    { status: e.status, headers: { "x-request-id": requestId } },
  );
  if (e.retryAfterMs !== undefined) {
    res.headers.set("retry-after", String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  }
  return res;
}
