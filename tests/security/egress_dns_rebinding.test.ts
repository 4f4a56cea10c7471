/**
 * DNS rebinding: the name resolves to an allowed address when the host
 * checks it and to a loopback target when the connection is made. The server
 * gets an injected resolver (`ServerOptions.egressResolver`) that answers
 * differently from the system resolver, so the two resolutions disagree the
 * way a rebinding DNS server makes them:
 *
 * - `rebind.test` (the system resolver knows no such name) → 127.0.0.1 for
 *   the host: a tenant reaches the upstream there only if its connection used
 *   the host-checked address. Every way out is tried (controls).
 * - This machine's host name: the system resolver answers loopback (where the
 *   upstream listens), the injected one a decoy the config allows
 *   (`127.0.0.2`, nothing listens there). A connection that resolved the name
 *   again would reach the upstream (attempts: it must not).
 * - An allowlist tenant (`net = ["rebind.test"]`, 127.0.0.1 allowed): fetch is pinned the same
 *   way and Deno still enforces the list; raw sockets dial the name (Deno checks the address,
 *   which the list does not name), and the address that dial reached is verified before the
 *   tenant gets the connection (one of Worky's own ports: closed unused); `node:net` has the
 *   address its own resolution found verified before it dials.
 * - The egress proxy's own port and forged HTTP clients (attempts).
 *
 * TLS fixtures (`_fixtures/`): a test CA and a certificate for `rebind.test`
 * (openssl, EC P-256, valid until 2126).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { lookup } from "node:dns/promises";
import { ask, attackModule } from "./_tenant.ts";
import { type Fixture, startFixture } from "../_helpers/fixture.ts";
import { attempt } from "./_summary.ts";
import { egressProxy } from "../../runtime/egress_proxy.ts";
import { protectControlPlanePort } from "../../runtime/egress.ts";

const FIXTURES = new URL("./_fixtures/", import.meta.url);
const CA = Deno.readTextFileSync(new URL("egress_ca.crt", FIXTURES));
const CERT = Deno.readTextFileSync(new URL("rebind_test.crt", FIXTURES));
const KEY = Deno.readTextFileSync(new URL("rebind_test.key", FIXTURES));
const HOST_NAME = Deno.hostname();

/** A real server that counts requests; `/redirect` → `/`, `/events` is an event stream, WS echoes. */
interface Upstream {
  port: number;
  hits: number;
  close(): Promise<void>;
}

function startUpstream(hostname: string, tls = false): Promise<Upstream> {
  const ready = Promise.withResolvers<Upstream>();
  const up = { hits: 0 } as Upstream;
  const server = Deno.serve({
    hostname,
    port: 0,
    ...(tls ? { cert: CERT, key: KEY } : {}),
    onListen: ({ port }) => {
      up.port = port;
      ready.resolve(up);
    },
  }, (req) => {
    up.hits++;
    const path = new URL(req.url).pathname;
    if (req.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo ${e.data}`);
      return response;
    }
    if (path === "/redirect") {
      return new Response(null, { status: 302, headers: { location: "/" } });
    }
    if (path === "/events") {
      return new Response("data: reached\n\n", {
        headers: { "content-type": "text/event-stream" },
      });
    }
    return new Response("reached");
  });
  up.close = () => server.shutdown();
  return ready.promise;
}

/** Every way out, picked by `?api=`; each returns what the upstream answered. */
const WAYS_OUT = `
  const q = new URL(request.url).searchParams;
  const host = q.get("host"), port = Number(q.get("port")), ca = ${JSON.stringify(CA)};
  const readAll = async (conn) => {
    const chunks = [];
    const buf = new Uint8Array(4096);
    for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  };
  const http1 = new TextEncoder().encode("GET / HTTP/1.1\\r\\nhost: x\\r\\nconnection: close\\r\\n\\r\\n");
  const nodeGet = (mod, opts) => new Promise((resolve, reject) => {
    const req = mod.get(opts, (res) => {
      let body = "";
      res.on("data", (c) => body += c);
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
  });
  switch (q.get("api")) {
    case "fetch":
      return await (await fetch("http://" + host + ":" + port + "/")).text();
    case "fetch_redirect":
      return await (await fetch("http://" + host + ":" + port + "/redirect")).text();
    case "fetch_client": {
      const client = Deno.createHttpClient({ caCerts: [ca] });
      return await (await fetch(q.get("scheme") + "://" + host + ":" + port + "/", { client })).text();
    }
    case "forged_client": {
      const client = new Deno.HttpClient(Number(q.get("rid") ?? 1));
      return await (await fetch("http://" + host + ":" + port + "/", { client })).text();
    }
    case "websocket":
      return await new Promise((resolve, reject) => {
        const ws = new WebSocket("ws://" + host + ":" + port + "/");
        ws.onopen = () => ws.send("hi");
        ws.onmessage = (e) => { ws.close(); resolve(e.data); };
        ws.onerror = (e) => reject(Object.assign(new Error(e.message ?? "ws error"), { code: "WS" }));
      });
    case "eventsource":
      return await new Promise((resolve, reject) => {
        const es = new EventSource("http://" + host + ":" + port + "/events");
        es.onmessage = (e) => { es.close(); resolve(e.data); };
        es.onerror = (e) => { es.close(); reject(new Error(e.message ?? "eventsource error")); };
      });
    case "connect": {
      const conn = await Deno.connect({ hostname: host, port });
      await conn.write(http1);
      return await readAll(conn);
    }
    case "connectTls": {
      const conn = await Deno.connectTls({ hostname: host, port, caCerts: [ca] });
      await conn.write(http1);
      return await readAll(conn);
    }
    case "connectTls_cert": { // a client certificate: Deno.startTls takes none, so it dials the name
      const conn = await Deno.connectTls({
        hostname: host, port, caCerts: [ca], cert: ${JSON.stringify(CERT)}, key: ${
  JSON.stringify(KEY)
},
      });
      await conn.write(http1);
      return await readAll(conn);
    }
    case "node_net": {
      const net = await import("node:net");
      return await new Promise((resolve, reject) => {
        let body = "";
        const s = net.connect({ host, port }, () => s.write(http1));
        s.on("data", (c) => body += c);
        s.on("end", () => resolve(body));
        s.on("error", reject);
      });
    }
    case "connect_getter": { // checked as one host, dialled as another if read twice
      let reads = 0;
      const conn = await Deno.connect({
        get hostname() { return reads++ === 0 ? q.get("first") : host; },
        port,
      });
      await conn.write(http1);
      return await readAll(conn);
    }
    case "node_net_getter": {
      const net = await import("node:net");
      let reads = 0;
      return await new Promise((resolve, reject) => {
        let body = "";
        const s = net.connect({
          get host() { return reads++ === 0 ? q.get("first") : host; },
          port,
        }, () => s.write(http1));
        s.on("data", (c) => body += c);
        s.on("end", () => resolve(body));
        s.on("error", reject);
      });
    }
    case "node_http":
      return await nodeGet(await import("node:http"), { host, port, path: "/" });
    case "node_https":
      return await nodeGet(await import("node:https"), { host, port, path: "/", ca: [ca] });
  }
  throw new Error("unknown api " + q.get("api"));
`;

let f: Fixture;
/** Where the system resolver sends the host name (the rebinding target). */
let target: Upstream;
/** The upstreams `rebind.test` reaches: plain and TLS, on 127.0.0.1. */
let plain: Upstream;
let tls: Upstream;
let decoy: string;
const resolved: string[] = [];

beforeAll(async () => {
  const system = (await lookup(HOST_NAME, { all: true })).map((a) => a.address);
  const loop = system.find((a) => a.startsWith("127."));
  if (!loop) throw new Error(`${HOST_NAME} must resolve to 127.x here, got ${system}`);
  decoy = loop === "127.0.0.2" ? "127.0.0.3" : "127.0.0.2";
  target = await startUpstream(loop);
  plain = await startUpstream("127.0.0.1");
  tls = await startUpstream("127.0.0.1", true);
  const table: Record<string, string[]> = {
    "rebind.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    [HOST_NAME]: [decoy],
  };
  const module = attackModule(WAYS_OUT);
  f = await startFixture({
    "pinned/mod.ts": module,
    "rebinder/mod.ts": module,
    "listed/mod.ts": module,
    "celled/mod.ts": module,
    "worky.toml": `
[tenants.listed]
module = "listed/mod.ts"
routes = ["listed.localhost/*"]
[tenants.listed.permissions]
net = ["rebind.test"]
[tenants.listed.egress]
allow_private = ["127.0.0.1"]

[tenants.celled]
module = "celled/mod.ts"
routes = ["celled.localhost/*"]
[tenants.celled.permissions]
net = ["rebind.test"]
[tenants.celled.egress]
allow_private = ["127.0.0.1"]
[tenants.celled.limits]
isolation = "cell"

[tenants.pinned]
module = "pinned/mod.ts"
routes = ["pinned.localhost/*"]
[tenants.pinned.permissions]
net = true
[tenants.pinned.egress]
allow_private = ["127.0.0.1"]

[tenants.rebinder]
module = "rebinder/mod.ts"
routes = ["rebinder.localhost/*"]
[tenants.rebinder.permissions]
net = true
[tenants.rebinder.egress]
allow_private = ["${decoy}"]
`,
  }, {
    egressResolver: (host) => {
      resolved.push(host);
      const answer = table[host.toLowerCase()];
      return answer
        ? Promise.resolve(answer)
        : Promise.reject(new Error(`ENOTFOUND ${host} (test resolver)`));
    },
  });
});
afterAll(async () => {
  await f?.close();
  await Promise.all([target?.close(), plain?.close(), tls?.close()]);
});

function run(tenant: string, api: string, host: string, port: number, extra = "") {
  return ask(f, tenant, `/?api=${api}&host=${encodeURIComponent(host)}&port=${port}${extra}`);
}

it("premise: the system resolver cannot resolve rebind.test", async () => {
  await expect(lookup("rebind.test")).rejects.toThrow();
});

const PINNED: [api: string, tls: boolean, expected: RegExp, extra?: string][] = [
  ["fetch", false, /^reached$/],
  ["fetch_redirect", false, /^reached$/],
  ["fetch_client", true, /^reached$/, "&scheme=https"],
  ["websocket", false, /^echo hi$/],
  ["eventsource", false, /^reached$/],
  ["connect", false, /200 OK[\s\S]*reached$/],
  ["connectTls", true, /200 OK[\s\S]*reached$/],
  ["node_net", false, /200 OK[\s\S]*reached$/],
  ["node_http", false, /^reached$/],
  ["node_https", true, /^reached$/],
];

for (const [api, useTls, expected, extra] of PINNED) {
  it(`${api} to rebind.test reaches the address the host checked${useTls ? " (TLS by name)" : ""}`, async () => {
    const up = useTls ? tls : plain;
    const before = up.hits;
    const { body } = await run("pinned", api, "rebind.test", up.port, extra);
    expect(body, JSON.stringify(body)).toMatchObject({ ok: true });
    expect(String(body.value)).toMatch(expected);
    expect(up.hits).toBeGreaterThan(before);
  });
}

for (
  const api of [
    "fetch",
    "fetch_redirect",
    "websocket",
    "eventsource",
    "connect",
    "node_net",
    "node_http",
  ]
) {
  attempt(
    `${api}: a name checked as an allowed decoy that resolves to loopback at connect time`,
    async () => {
      target.hits = 0;
      resolved.length = 0;
      const { status, body } = await run("rebinder", api, HOST_NAME, target.port);
      expect(status).toBe(200);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(resolved).toContain(HOST_NAME); // the check ran, and allowed the decoy
      expect(target.hits).toBe(0);
    },
  );
}

for (const api of ["connect_getter", "node_net_getter"]) {
  attempt(`${api}: options whose host changes between the check and the dial`, async () => {
    target.hits = 0;
    const first = encodeURIComponent(HOST_NAME); // checked: resolves to the allowed decoy
    const { body } = await run("rebinder", api, "127.0.0.1", target.port, `&first=${first}`);
    expect(body.ok, JSON.stringify(body)).toBe(false);
    expect(target.hits).toBe(0);
  });
}

attempt("connectTls with a client certificate (dials the name) to a rebinding name", async () => {
  target.hits = 0;
  const { body } = await run("rebinder", "connectTls_cert", HOST_NAME, target.port);
  expect(body.ok, JSON.stringify(body)).toBe(false);
  // refused for the address the dial reached, before the tenant could send a byte
  expect(String(body.message)).toMatch(/the connection reached/);
  expect(target.hits).toBe(0);
});

attempt("fetch through a tenant-made client to a rebinding name", async () => {
  target.hits = 0;
  const { body } = await run("rebinder", "fetch_client", HOST_NAME, target.port, "&scheme=http");
  expect(body.ok, JSON.stringify(body)).toBe(false);
  expect(target.hits).toBe(0);
});

attempt("fetch with a forged Deno.HttpClient (a resource id, not a made client)", async () => {
  target.hits = 0;
  for (const rid of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const { body } = await run("rebinder", "forged_client", HOST_NAME, target.port, `&rid=${rid}`);
    expect(body.ok, JSON.stringify(body)).toBe(false);
    expect(String(body.message)).toMatch(/not made by Deno.createHttpClient/);
  }
  expect(target.hits).toBe(0);
});

for (const api of ["fetch", "connect", "node_net", "websocket"]) {
  attempt(`${api} to the egress proxy's own port (its address is allowed by config)`, async () => {
    const port = egressProxy().port!;
    expect(port).toBeGreaterThan(0);
    const { body } = await run("pinned", api, "127.0.0.1", port);
    expect(body.ok, JSON.stringify(body)).toBe(false);
    expect(String(body.message)).toMatch(/Worky egress proxy/);
  });
}

it("allowlist tenant: fetch goes through the proxy to the checked address", async () => {
  const before = plain.hits;
  const { body } = await run("listed", "fetch", "rebind.test", plain.port);
  expect(body).toEqual({ ok: true, value: "reached" });
  expect(plain.hits).toBe(before + 1);
});

for (
  const [api, expected] of [
    ["fetch", "reached"],
    ["fetch_redirect", "reached"],
    ["websocket", "echo hi"],
    ["eventsource", "reached"],
  ] as const
) {
  it(`allowlist tenant in a cell: ${api} goes through the control plane's proxy to the checked address`, async () => {
    // the cell can't resolve rebind.test either: reaching the upstream proves the pinned dial
    const before = plain.hits;
    const { body } = await run("celled", api, "rebind.test", plain.port);
    expect(body).toEqual({ ok: true, value: expected });
    expect(plain.hits).toBeGreaterThan(before);
  });
}

for (const api of ["fetch", "connect", "node_net"]) {
  attempt(
    `allowlist tenant in a cell: ${api} to the control plane's egress proxy port`,
    async () => {
      const { body } = await run("celled", api, "127.0.0.1", egressProxy().port!);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(String(body.message)).toMatch(/Worky egress proxy/);
    },
  );
}

it("allowlist tenant: Deno still refuses a name the list does not hold", async () => {
  const before = plain.hits; // other.test → 127.0.0.1, which the policy allows this tenant
  const { body } = await run("listed", "fetch", "other.test", plain.port);
  expect(body.ok).toBe(false);
  expect(String(body.message)).toMatch(/Requires net access to "other.test/);
  expect(plain.hits).toBe(before);
});

it("allowlist tenant: a raw socket to a listed name dials the name (the documented limit)", async () => {
  // Deno checks the address a socket dials against the list, which holds only the name, so
  // the guard dials the name after the check: the system resolver cannot resolve rebind.test
  const { body } = await run("listed", "connect", "rebind.test", plain.port);
  expect(body.ok).toBe(false);
  expect(String(body.message)).not.toMatch(/refused|Requires net access/);
});

for (const api of ["fetch", "connect", "node_net"]) {
  attempt(
    `allowlist tenant: ${api} to the egress proxy's port (its worker may dial it)`,
    async () => {
      const port = egressProxy().port!;
      const { body } = await run("listed", api, "127.0.0.1", port);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(String(body.message)).toMatch(/Worky egress proxy/);
    },
  );
}

/**
 * An allowlist tenant whose listed name the host checked as a public address but Deno, dialling
 * the name itself, reaches somewhere else: a server on this machine standing in for one of
 * Worky's own ports (`protect`), or an ordinary one (the control). A server of its own, so its
 * resolver can answer the public address for this machine's name.
 */
async function listedNameDial(protect: boolean, api = "connect") {
  const system = (await lookup(HOST_NAME, { all: true })).map((a) => a.address);
  const self = await startUpstream(system.find((a) => a.startsWith("127."))!);
  const undo = protect ? protectControlPlanePort(self.port) : () => {};
  const g = await startFixture({
    "m/mod.ts": attackModule(WAYS_OUT),
    "worky.toml": `[tenants.listed]\nmodule = "m/mod.ts"\nroutes = ["listed.localhost/*"]\n` +
      `[tenants.listed.permissions]\nnet = ["${HOST_NAME}"]\n`,
  }, { egressResolver: () => Promise.resolve(["93.184.216.34"]) });
  try {
    const { body } = await ask(g, "listed", `/?api=${api}&host=${HOST_NAME}&port=${self.port}`);
    return { body, hits: self.hits };
  } finally {
    undo();
    await g.close();
    await self.close();
  }
}

for (const api of ["connect", "node_net"]) {
  attempt(
    `allowlist tenant: ${api} to a listed name that reaches Worky's own port when dialled`,
    async () => {
      const { body, hits } = await listedNameDial(true, api);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(String(body.message)).toMatch(/the connection reached .*Worky control plane/);
      expect(hits).toBe(0); // refused before the tenant could send a byte
    },
  );

  it(`allowlist tenant: ${api} to a listed name keeps an ordinary address it reached`, async () => {
    const { body, hits } = await listedNameDial(false, api);
    expect(body, JSON.stringify(body)).toMatchObject({ ok: true });
    expect(String(body.value)).toMatch(/200 OK[\s\S]*reached$/);
    expect(hits).toBe(1);
  });
}
