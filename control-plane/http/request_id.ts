/**
 * Request ids: a per-process random prefix and a counter, so making one costs
 * no crypto on the hot path while staying unique across restarts.
 */
const prefix = crypto.getRandomValues(new Uint32Array(1))[0].toString(36).padStart(7, "0");
let counter = 0;

export function newRequestId(): string {
  return `${prefix}-${(counter++).toString(36)}`;
}
