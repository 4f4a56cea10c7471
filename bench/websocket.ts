/**
 * WebSocket benchmark, in one run (same machine, same client code):
 *
 * - `ws_echo_rtt_per_s_worky`: sequential round trips per second of one client
 *   to a tenant echoing in `fetch` (WebSocketPair; frames relayed host ↔ worker).
 * - `ws_echo_rtt_per_s_do`: the same through a Durable Object's
 *   `webSocketMessage` (input gate, relayed to the object's worker).
 * - `ws_echo_msgs_per_s_worky_20_clients`: 20 clients echoing at once.
 * - `..._bare` baselines: the same clients against a bare `Deno.serve` +
 *   `Deno.upgradeWebSocket` echo in this process.
 *
 * Run: `node_modules/deno/deno run -A --unstable-worker-options bench/websocket.ts`.
 *
 * @module
 */
import { parseConfigObject } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { MemoryLogger } from "../runtime/logger.ts";

const TENANT = `
import { DurableObject } from "worky";
export class Echo extends DurableObject {
  fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }
  webSocketMessage(ws, message) { ws.send(message); }
}
export default {
  fetch(request, env) {
    if (new URL(request.url).pathname === "/do") return env.ECHO.getByName("e").fetch(request);
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener("message", (e) => server.send(e.data));
    return new Response(null, { status: 101, webSocket: client });
  },
};
`;

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return ws;
}

/** `n` sequential round trips on each of `clients` sockets; messages per second. */
async function echoRate(url: string, clients: number, n: number): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: clients }, () => open(url)));
  const t0 = performance.now();
  await Promise.all(sockets.map((ws) =>
    new Promise<void>((resolve) => {
      let left = n;
      ws.onmessage = () => {
        if (--left === 0) resolve();
        else ws.send("ping");
      };
      ws.send("ping");
    })
  ));
  const ms = performance.now() - t0;
  for (const ws of sockets) ws.close();
  return Math.round((clients * n) / (ms / 1000));
}

/** Measures relayed WebSocket echo rates against a bare Deno echo server. */
export async function run(): Promise<Record<string, number | string>> {
  const dir = await Deno.makeTempDir({ prefix: "worky-bench-ws-" });
  await Deno.writeTextFile(`${dir}/mod.js`, TENANT);
  const config = parseConfigObject({
    server: { port: 0, data_dir: `${dir}/.worky` },
    tenants: {
      bench: { module: "mod.js", routes: ["*/*"], durable_objects: { ECHO: "Echo" } },
    },
  }, { path: "<bench>", dir, env: {} });
  const server = await startServer({ config, logger: new MemoryLogger(), port: 0 });
  const bare = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  });
  const worky = server.url.replace("http", "ws");
  const bareUrl = `ws://127.0.0.1:${bare.addr.port}/`;
  try {
    await echoRate(`${worky}/`, 1, 500); // warm up
    await echoRate(`${worky}/do`, 1, 500);
    await echoRate(bareUrl, 1, 500);
    const N = 5_000;
    return {
      ws_echo_rtt_per_s_worky: await echoRate(`${worky}/`, 1, N),
      ws_echo_rtt_per_s_do: await echoRate(`${worky}/do`, 1, N),
      ws_echo_rtt_per_s_bare: await echoRate(bareUrl, 1, N),
      ws_echo_msgs_per_s_worky_20_clients: await echoRate(`${worky}/`, 20, 1_000),
      ws_echo_msgs_per_s_bare_20_clients: await echoRate(bareUrl, 20, 1_000),
    };
  } finally {
    await bare.shutdown();
    await server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) console.log(await run());
