/**
 * A chat room per name: a Durable Object holds the room's WebSockets.
 *
 * - `GET /chat/` serves a small HTML page.
 * - `GET /chat/<room>?name=<who>` (a WebSocket upgrade) joins room `<room>`.
 *   Every text message a member sends is broadcast to everyone in the room as
 *   `{ type: "message", name, text, seq }`; joins and leaves as
 *   `{ type: "join" | "leave", name, count }`. A new member first gets the last
 *   20 messages as `{ type: "history", messages }`.
 *
 * Bound in worky.toml with `durable_objects = { ROOMS = "ChatRoom" }`. The same
 * code runs on Cloudflare (`WebSocketPair`, `ctx.acceptWebSocket`, `webSocketMessage`).
 */
import { DurableObject } from "worky";
import type {
  DurableObjectNamespace,
  ExportedHandler,
  WebSocketPairConstructor,
  WorkyResponseInit,
  WorkyWebSocket,
} from "../../mod.ts";

/** The runtime's global (Cloudflare's too). */
declare const WebSocketPair: WebSocketPairConstructor;

interface Env {
  ROOMS: DurableObjectNamespace<ChatRoom>;
}

interface ChatMessage {
  name: string;
  text: string;
  seq: number;
}

const HISTORY = 20;

export class ChatRoom extends DurableObject<Env> {
  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const asked = new URL(request.url).searchParams.get("name")?.trim().slice(0, 32);
    const name = asked || `guest-${crypto.randomUUID().slice(0, 4)}`;
    const [client, server] = Object.values(new WebSocketPair());
    server.serializeAttachment({ name });
    this.ctx.acceptWebSocket(server, ["member"]);
    const history = (await this.ctx.storage.get<ChatMessage[]>("history")) ?? [];
    server.send(JSON.stringify({ type: "history", messages: history }));
    this.#broadcast({ type: "join", name, count: this.ctx.getWebSockets().length });
    const init: WorkyResponseInit = { status: 101, webSocket: client };
    return new Response(null, init);
  }

  async webSocketMessage(ws: WorkyWebSocket, message: string | ArrayBuffer): Promise<void> {
    const { name } = ws.deserializeAttachment<{ name: string }>()!;
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    // read-modify-write under the input gate: sequence numbers never repeat
    const history = (await this.ctx.storage.get<ChatMessage[]>("history")) ?? [];
    const entry = { name, text: text.slice(0, 2000), seq: (history.at(-1)?.seq ?? 0) + 1 };
    await this.ctx.storage.put("history", [...history, entry].slice(-HISTORY));
    this.#broadcast({ type: "message", ...entry });
  }

  webSocketClose(ws: WorkyWebSocket, code: number, reason: string): void {
    const { name } = ws.deserializeAttachment<{ name: string }>()!;
    ws.close(code === 1005 ? 1000 : code, reason); // completes the close handshake
    this.#broadcast({ type: "leave", name, count: this.ctx.getWebSockets().length });
  }

  #broadcast(message: Record<string, unknown>): void {
    const data = JSON.stringify(message);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(data);
      } catch { /* closing */ }
    }
  }
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean);
    if (parts[0] === "chat") parts.shift();
    const room = parts[0];
    if (!room) {
      return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (!/^[\w-]{1,64}$/.test(room)) {
      return Response.json({ error: `bad room name "${room.slice(0, 64)}"` }, { status: 400 });
    }
    return env.ROOMS.getByName(room).fetch(request);
  },
} satisfies ExportedHandler<Env>;

const PAGE = `<!doctype html>
<meta charset="utf-8"><title>Worky chat</title>
<style>body{font:15px system-ui;max-width:40em;margin:2em auto}#log{height:20em;overflow:auto;
border:1px solid #ccc;padding:.5em;white-space:pre-wrap}input{padding:.3em}</style>
<h1>Worky chat</h1>
<form id="join">room <input id="room" value="lobby"> name <input id="name" value="me">
<button>join</button></form>
<div id="log"></div>
<form id="say"><input id="text" size="50" placeholder="say something"> <button>send</button></form>
<script>
let ws;
const log = (s) => { const l = document.getElementById("log"); l.textContent += s + "\\n"; l.scrollTop = 1e9; };
document.getElementById("join").onsubmit = (e) => {
  e.preventDefault();
  ws?.close();
  const room = encodeURIComponent(document.getElementById("room").value);
  const name = encodeURIComponent(document.getElementById("name").value);
  const base = location.pathname.replace(/\\/?$/, "/");
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + base + room + "?name=" + name);
  ws.onmessage = (m) => {
    const d = JSON.parse(m.data);
    if (d.type === "history") d.messages.forEach((x) => log(x.name + ": " + x.text));
    else if (d.type === "message") log(d.name + ": " + d.text);
    else log("* " + d.name + (d.type === "join" ? " joined" : " left") + " (" + d.count + " here)");
  };
  ws.onclose = (e) => log("* disconnected (" + e.code + ")");
};
document.getElementById("say").onsubmit = (e) => {
  e.preventDefault();
  const t = document.getElementById("text");
  if (ws && ws.readyState === 1 && t.value) ws.send(t.value);
  t.value = "";
};
</script>
`;
