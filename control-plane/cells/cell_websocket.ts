/**
 * WebSockets to a tenant in a cell. The cell serves the upgrade itself (its `Deployment` answers
 * the tenant's `WebSocketPair` with `Deno.upgradeWebSocket` on the unix-socket request), so the
 * control plane only joins two sockets: it opens a WebSocket to the cell through the cell's
 * unix-socket HTTP client (Deno's `WebSocket` takes `client` and handshake `headers`), and once
 * the cell accepted, upgrades the client's request and relays frames and closes both ways.
 *
 * - The tenant accepts or refuses before the client is upgraded: a refusal (any non-101 answer,
 *   which Deno's WebSocket client can't show us) is a 502 naming the tenant.
 * - Frames the tenant sends before the client's socket is open (a welcome message) are queued.
 * - The cell dying closes the client with 1011; the client leaving closes the cell's side.
 *
 * @module
 */
import { WorkyError } from "../../runtime/errors.ts";
import { closeSocket } from "../../runtime/websocket/relay.ts";

/** Request headers the WebSocket client sets itself (or that only concern one hop). */
const OWN_HANDSHAKE = new Set([
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "host",
  "content-length",
  "transfer-encoding",
]);

/**
 * Opens the tenant's side in the cell, then upgrades `request` and relays. `headers` are the
 * request's headers as the relay forwards them (internal ones already set or removed).
 *
 * @example
 * ```ts ignore
 * return relayWebSocket(request, headers, run.client, "chat");
 * ```
 */
export async function relayWebSocket(
  request: Request,
  headers: Headers,
  client: Deno.HttpClient,
  tenant: string,
): Promise<Response> {
  const url = new URL(request.url);
  url.protocol = "ws:"; // the hop to the cell is plain HTTP on a unix socket
  const forwarded = new Headers();
  for (const [k, v] of headers) if (!OWN_HANDSHAKE.has(k)) forwarded.append(k, v);
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter(Boolean);
  const upstream = new WebSocket(url, { client, headers: forwarded, protocols });
  upstream.binaryType = "arraybuffer";
  const early: (string | ArrayBuffer)[] = [];
  upstream.onmessage = (e) => early.push(e.data);
  await new Promise<void>((resolve, reject) => {
    const refused = () =>
      reject(
        new WorkyError(
          "ERR_TENANT_REFUSED_UPGRADE",
          `tenant "${tenant}" (in a cell) did not accept the WebSocket upgrade of ` +
            `${url.pathname}: it must answer new Response(null, { status: 101, webSocket })`,
        ),
      );
    upstream.onopen = () => resolve();
    upstream.onerror = refused;
    upstream.onclose = refused;
  });
  let upgraded: { socket: WebSocket; response: Response };
  try {
    upgraded = Deno.upgradeWebSocket(
      request,
      upstream.protocol ? { protocol: upstream.protocol } : undefined,
    );
  } catch (err) {
    upstream.close();
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `the request to tenant "${tenant}" is not a WebSocket upgrade: ${(err as Error).message}`,
    );
  }
  const socket = upgraded.socket;
  socket.binaryType = "arraybuffer";
  upstream.onmessage = (e) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(e.data);
    else early.push(e.data);
  };
  upstream.onerror = null;
  let closedByCell: { code: number; reason: string } | undefined;
  upstream.onclose = (e) => {
    // 1006: the cell went away without a close frame (it died)
    closedByCell = { code: e.code === 1006 ? 1011 : e.code, reason: e.reason || "the cell closed" };
    if (socket.readyState !== WebSocket.CONNECTING) {
      closeSocket(socket, closedByCell.code, closedByCell.reason);
    }
  };
  socket.onopen = () => {
    for (const data of early.splice(0)) socket.send(data);
    if (closedByCell) closeSocket(socket, closedByCell.code, closedByCell.reason);
  };
  socket.onmessage = (e) => {
    if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
  };
  socket.onclose = (e) => closeSocket(upstream, e.code, e.reason);
  return upgraded.response;
}
