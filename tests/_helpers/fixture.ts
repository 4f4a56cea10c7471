/**
 * Test fixture: a temp folder with tenant modules and a worky.toml, and a
 * real Worky server on an ephemeral port in front of it.
 */
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { type ServerOptions, startServer, type WorkyServer } from "../../control-plane/server.ts";
import { MemoryLogger } from "../../runtime/logger.ts";

export interface Fixture {
  dir: string;
  server: WorkyServer;
  logger: MemoryLogger;
  url: string;
  /** GET/POST through the real socket; `path` is appended to the server URL. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export const REPO = new URL("../../", import.meta.url).pathname;

/** Writes files (path → content) under a new temp dir and returns the dir. */
export async function writeTree(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "worky-test-" });
  for (const [rel, content] of Object.entries(files)) {
    const path = `${dir}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, content);
  }
  return dir;
}

/** Options of {@link startFixture}: where the files go, the config's env, and server tuning. */
export interface FixtureOptions extends Omit<ServerOptions, "config" | "logger"> {
  /** Write the files into this existing folder instead of a new temp dir. */
  dir?: string;
  /** The environment the config is loaded with (e.g. `WORKY_DB_URL`); default none. */
  env?: Record<string, string>;
}

/** Writes `files` (with a `worky.toml`) and serves them on 127.0.0.1:0 with a MemoryLogger. */
export async function startFixture(
  files: Record<string, string>,
  options: FixtureOptions = {},
): Promise<Fixture> {
  const { dir: into, env = {}, ...serverOptions } = options;
  const dir = into ?? await writeTree(files);
  if (into) {
    for (const [rel, content] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${rel}`, content);
    }
  }
  const config = await loadConfig(`${dir}/worky.toml`, { env });
  const logger = new MemoryLogger();
  const server = await startServer({
    port: 0,
    hostname: "127.0.0.1",
    ...serverOptions,
    config,
    logger,
  });
  return {
    dir,
    server,
    logger,
    url: server.url,
    fetch: (path, init) => fetch(server.url + path, init),
    close: () => server.close(),
  };
}

/** A response read off the wire by {@link rawRequest}. */
export interface RawResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * One HTTP/1.1 request over a plain TCP socket, so the Host header is ours
 * (fetch always sends the URL's host).
 */
export async function rawRequest(
  url: string,
  host: string,
  path: string,
  method = "GET",
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const req = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(req));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(concat(chunks));
    const [head, ...rest] = text.split("\r\n\r\n");
    const [statusLine, ...lines] = head.split("\r\n");
    const headers = lines.map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()] as [string, string];
    });
    let body = rest.join("\r\n\r\n");
    if (headers.some(([k, v]) => k === "transfer-encoding" && v === "chunked")) {
      body = dechunk(body);
    }
    return { status: Number(statusLine.split(" ")[1]), headers, body };
  } finally {
    try {
      conn.close();
    } catch { /* closed by peer */ }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  while (rest.length) {
    const i = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, i), 16);
    if (!size) break;
    out += rest.slice(i + 2, i + 2 + size);
    rest = rest.slice(i + 2 + size + 2);
  }
  return out;
}

/** Waits until `check` returns true (polling a condition, not time). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
