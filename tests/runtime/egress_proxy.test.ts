/**
 * The egress proxy (runtime/egress_proxy.ts) on a real socket: a SOCKS5
 * client written here, and Deno's own HTTP client, against real upstreams on
 * 127.0.0.1, with an injected resolver.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { EgressPolicy, type Resolver } from "../../runtime/egress.ts";
import { EgressProxy, type EgressProxyGrant } from "../../runtime/egress_proxy.ts";

let proxy: EgressProxy;
let upstream: Deno.HttpServer<Deno.NetAddr>;
let hits = 0;
let port = 0;

beforeAll(async () => {
  proxy = new EgressProxy({ handshakeTimeoutMs: 500 });
  proxy.acquire();
  const ready = Promise.withResolvers<void>();
  upstream = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => ready.resolve(),
  }, (req) => {
    hits++;
    return new Response(`reached ${new URL(req.url).host}`);
  });
  await ready.promise;
  port = upstream.addr.port;
});
afterAll(async () => {
  proxy?.release();
  await upstream?.shutdown();
});

const table = (answers: Record<string, string[]>): Resolver => (host) =>
  answers[host] ? Promise.resolve(answers[host]) : Promise.reject(new Error(`ENOTFOUND ${host}`));

/** A policy that may reach 127.0.0.1 (named), with `resolve`. */
function grantFor(resolve: Resolver, allowPrivate = ["127.0.0.1"]): EgressProxyGrant {
  const policy = new EgressPolicy({ net: true, allowPrivate }, { resolve, selfAddresses: [] });
  return proxy.register("t", policy)!;
}

async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error(`EOF after ${off} of ${n} bytes`);
    off += got;
  }
  return out;
}

/** SOCKS5 handshake by hand; returns the reply code and the connection. */
async function socks(
  grant: { username: string; password: string },
  host: string,
  targetPort: number,
): Promise<{ rep: number; bound: string; conn: Deno.Conn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port! });
  const enc = new TextEncoder();
  await conn.write(Uint8Array.from([5, 1, 2]));
  expect([...await readN(conn, 2)]).toEqual([5, 2]);
  const u = enc.encode(grant.username), p = enc.encode(grant.password);
  await conn.write(Uint8Array.from([1, u.length, ...u, p.length, ...p]));
  const [, status] = await readN(conn, 2);
  if (status !== 0) return { rep: -1, bound: "", conn };
  const h = enc.encode(host);
  await conn.write(
    Uint8Array.from([5, 1, 0, 3, h.length, ...h, targetPort >> 8, targetPort & 255]),
  );
  const head = await readN(conn, 4);
  const addr = await readN(conn, head[3] === 4 ? 16 : 4);
  await readN(conn, 2);
  return { rep: head[1], bound: [...addr].join("."), conn };
}

async function httpGet(conn: Deno.Conn): Promise<string> {
  await conn.write(
    new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
  );
  let text = "";
  const buf = new Uint8Array(4096);
  for (let n; (n = await conn.read(buf)) !== null;) {
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

it("dials the address the policy checked, resolving the name once", async () => {
  const asked: string[] = [];
  // a rebinding resolver: allowed loopback first, something else on every later call
  const grant = grantFor((host) => {
    asked.push(host);
    return Promise.resolve(asked.length === 1 ? ["127.0.0.1"] : ["127.0.0.9"]);
  });
  try {
    hits = 0;
    const { rep, bound, conn } = await socks(grant, "rebind.test", port);
    expect(rep).toBe(0);
    expect(bound).toBe("127.0.0.1");
    expect(await httpGet(conn)).toMatch(/200 OK[\s\S]*reached x$/);
    conn.close();
    expect(asked).toEqual(["rebind.test"]);
    expect(hits).toBe(1);
  } finally {
    grant.release();
  }
});

it("refuses what the policy refuses (reply 2) and never dials it", async () => {
  const grant = grantFor(table({ "inside.test": ["127.0.0.1"] }), []);
  try {
    hits = 0;
    for (const host of ["inside.test", "127.0.0.1", "missing.test"]) {
      const { rep, conn } = await socks(grant, host, port);
      expect([host, rep]).toEqual([host, 2]);
      expect(await conn.read(new Uint8Array(1))).toBeNull(); // closed after the reply
      conn.close();
    }
    expect(hits).toBe(0);
  } finally {
    grant.release();
  }
});

it("a refused connection to a checked address is reply 5; its own port is refused", async () => {
  const grant = grantFor(table({ "closed.test": ["127.0.0.1"] }));
  try {
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (free.addr as Deno.NetAddr).port;
    free.close();
    const refused = await socks(grant, "closed.test", closedPort);
    expect(refused.rep).toBe(5);
    refused.conn.close();
    const self = await socks(grant, "127.0.0.1", proxy.port!);
    expect(self.rep).toBe(2); // the proxy's port is protected even where 127.0.0.1 is allowed
    self.conn.close();
  } finally {
    grant.release();
  }
});

it("wrong, released or missing credentials get nothing", async () => {
  const grant = grantFor(table({}));
  const wrong = await socks({ username: "t", password: grant.password + "x" }, "x", 1);
  expect(wrong.rep).toBe(-1);
  wrong.conn.close();
  const otherUser = await socks({ username: "u", password: grant.password }, "x", 1);
  expect(otherUser.rep).toBe(-1);
  otherUser.conn.close();
  grant.release();
  const released = await socks(grant, "x", 1);
  expect(released.rep).toBe(-1);
  released.conn.close();
  // no username/password method offered: refused
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port! });
  await conn.write(Uint8Array.from([5, 1, 0]));
  expect([...await readN(conn, 2)]).toEqual([5, 0xff]);
  conn.close();
});

it("drops a client that never finishes the handshake", async () => {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port! });
  await conn.write(Uint8Array.from([5]));
  const t0 = performance.now();
  expect(await conn.read(new Uint8Array(1))).toBeNull();
  expect(performance.now() - t0).toBeLessThan(5_000);
  conn.close();
});

it("Deno's client tunnels http through it, by name (socks5h), and reuses the tunnel", async () => {
  const grant = grantFor(table({ "rebind.test": ["127.0.0.1"] }));
  const client = Deno.createHttpClient({
    proxy: {
      url: `socks5h://127.0.0.1:${grant.port}`,
      basicAuth: { username: grant.username, password: grant.password },
    },
  });
  try {
    hits = 0;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`http://rebind.test:${port}/`, { client });
      expect(await res.text()).toBe(`reached rebind.test:${port}`);
    }
    expect(hits).toBe(3);
    expect(proxy.openConnections).toBe(2); // one tunnel: client side + upstream
  } finally {
    client.close();
    grant.release();
  }
});

it("close() ends every tunnel and stops listening", async () => {
  const own = new EgressProxy();
  own.acquire();
  const grant = own.register("t", new EgressPolicy({ net: true, allowPrivate: ["127.0.0.1"] }))!;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: grant.port });
  await conn.write(Uint8Array.from([5, 1, 2]));
  await readN(conn, 2);
  const enc = new TextEncoder();
  const u = enc.encode(grant.username), p = enc.encode(grant.password);
  await conn.write(Uint8Array.from([1, u.length, ...u, p.length, ...p]));
  await readN(conn, 2);
  await conn.write(Uint8Array.from([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]));
  expect((await readN(conn, 10))[1]).toBe(0);
  expect(own.openConnections).toBe(2);
  own.release();
  expect(own.port).toBeUndefined();
  expect(own.openConnections).toBe(0);
  expect(await conn.read(new Uint8Array(1))).toBeNull();
  conn.close();
  await expect(Deno.connect({ hostname: "127.0.0.1", port: grant.port })).rejects.toThrow();
});
