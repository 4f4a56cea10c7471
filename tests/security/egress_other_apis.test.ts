/**
 * Every other way out to 127.0.0.1, from a tenant with `net = true`:
 * Deno.connect, Deno.connectTls, WebSocket, EventSource (Deno's calls its
 * internal fetch: it reached the target before the guard replaced it),
 * node:net, node:http, Deno.createHttpClient with a proxy, and Deno.resolveDns with a
 * name server there (a UDP listener). None reaches
 * the target server.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { startTarget, type Target } from "./_target.ts";
import { attempt } from "./_summary.ts";
import dgram from "node:dgram";

let f: Fixture;
let target: Target;
/** A UDP listener on 127.0.0.1 (the name server attempt's target): datagrams it received. */
const udp = dgram.createSocket("udp4");
let datagrams = 0;
const ATTACKS: Record<string, string> = {
  connect: `const c = await Deno.connect({ hostname: "127.0.0.1", port: PORT });
    await c.write(new TextEncoder().encode("GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n")); return "connected";`,
  connect_default_host: `await Deno.connect({ port: PORT }); return "connected";`,
  connectTls: `await Deno.connectTls({ hostname: "localhost", port: PORT }); return "connected";`,
  websocket: `return await new Promise((resolve, reject) => {
      const ws = new WebSocket("ws://127.0.0.1:PORT/");
      ws.onopen = () => resolve("open");
      ws.onerror = (e) => reject(Object.assign(new Error(e.message ?? "ws error"), { code: "WS" }));
    });`,
  eventsource: `return await new Promise((resolve, reject) => {
      const es = new EventSource("http://127.0.0.1:PORT/");
      es.onopen = () => { es.close(); resolve("open"); };
      es.onerror = (e) => { es.close(); reject(new Error(e.message ?? "eventsource error")); };
    });`,
  node_net: `const net = await import("node:net");
    return await new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: PORT }, () => { s.end(); resolve("connected"); });
      s.on("error", reject);
    });`,
  node_http: `const http = await import("node:http");
    return await new Promise((resolve, reject) => {
      const req = http.get("http://127.0.0.1:PORT/", (res) => { res.resume(); resolve(res.statusCode); });
      req.on("error", reject);
    });`,
  resolve_dns_name_server: `return await Deno.resolveDns("example.com", "A", {
      nameServer: { ipAddr: "127.0.0.1", port: UDP_PORT },
    });`,
  proxy_client: `const client = Deno.createHttpClient({ proxy: { url: "http://127.0.0.1:PORT" } });
    const res = await fetch("http://example.com/", { client }); return res.status;`,
};

beforeAll(async () => {
  target = await startTarget();
  udp.on("message", () => datagrams++);
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
  const tenants: Record<string, { module: string; toml: string }> = {};
  for (const [name, attack] of Object.entries(ATTACKS)) {
    const id = name.replaceAll("_", "-").toLowerCase();
    tenants[id] = {
      module: attackModule(
        attack.replaceAll("UDP_PORT", String(udp.address().port))
          .replaceAll("PORT", String(target.port)),
      ),
      toml: `[tenants.${id}.permissions]\nnet = true\n`,
    };
  }
  tenants["allowed-node"] = {
    module: attackModule(ATTACKS.node_http.replaceAll("PORT", String(target.port))),
    toml: `[tenants.allowed-node.permissions]\nnet = ["127.0.0.1:${target.port}"]\n`,
  };
  f = await startTenants(tenants);
});
afterAll(async () => {
  await f?.close();
  await target?.close();
  udp.close();
});

for (const name of Object.keys(ATTACKS)) {
  attempt(`${name} to 127.0.0.1`, async () => {
    target.hits = 0;
    datagrams = 0;
    const { status, body } = await ask(f, name.replaceAll("_", "-").toLowerCase());
    expect(status).toBe(200);
    expect(body.ok, JSON.stringify(body)).toBe(false);
    expect(String(body.message)).toMatch(/refused|not available|loopback/);
    expect(target.hits).toBe(0);
    expect(datagrams).toBe(0);
  });
}

it("control: node:http reaches an address the config names (the guards don't break it)", async () => {
  target.hits = 0;
  const { body } = await ask(f, "allowed-node");
  expect(body).toEqual({ ok: true, value: 200 });
  expect(target.hits).toBe(1);
});
