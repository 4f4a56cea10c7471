/**
 * The fuzz loop shared by `deno task fuzz` (≥100,000 inputs) and the fixed
 * corpus in `tests/fuzz/corpus.test.ts` (a few hundred, same seeds each run).
 * A finding is an input that throws something other than a WorkyError with a
 * message, or a request that gets no well-formed answer.
 */
import { parseConfig } from "../../control-plane/config/load_config.ts";
import { parseRoute } from "../../control-plane/routing/route.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { mutateConfig, randomRawRequest, randomRequest, randomRoute, rng } from "./generators.ts";
import type { WorkyServer } from "../../control-plane/server.ts";
import { type Fixture, startFixture } from "../_helpers/fixture.ts";

/**
 * The server the ingress fuzz runs against: one KV tenant on every route whose
 * `GET /` answers the stored value `"kept"` (`"lost"` once it is gone).
 */
export async function startFuzzTarget(): Promise<Fixture> {
  const f = await startFixture({
    "kv.ts": `export default { async fetch(req, env) {
      if (new URL(req.url).pathname === "/seed") await env.STORE.put("k", "kept");
      return new Response((await env.STORE.get("k")) ?? "lost");
    } };`,
    "worky.toml": `[tenants.kv]\nmodule = "kv.ts"\nroutes = ["*/*"]\nkv = ["STORE"]\n`,
  });
  await (await f.fetch("/seed")).text();
  return f;
}

export interface FuzzReport {
  inputs: number;
  findings: string[];
}

function clearError(err: unknown, code: string): boolean {
  return err instanceof WorkyError && err.code === code && err.message.length > 0 &&
    err.message.length < 20_000;
}

/** `count` mutated worky.toml texts through parseConfig. */
export function fuzzConfig(seed: number, count: number): FuzzReport {
  const r = rng(seed);
  const findings: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = mutateConfig(r);
    try {
      parseConfig(text, { path: "/fuzz/worky.toml", dir: "/fuzz", env: {} });
    } catch (err) {
      if (!clearError(err, "ERR_CONFIG_INVALID")) {
        findings.push(
          `parseConfig(${JSON.stringify(text).slice(0, 300)}): ${String(err).slice(0, 300)}`,
        );
      }
    }
  }
  return { inputs: count, findings };
}

/** `count` random route patterns through parseRoute. */
export function fuzzRoutes(seed: number, count: number): FuzzReport {
  const r = rng(seed);
  const findings: string[] = [];
  for (let i = 0; i < count; i++) {
    const pattern = randomRoute(r);
    try {
      parseRoute(pattern);
    } catch (err) {
      if (!clearError(err, "ERR_CONFIG_INVALID")) {
        findings.push(`parseRoute(${JSON.stringify(pattern)}): ${String(err).slice(0, 300)}`);
      }
    }
  }
  return { inputs: count, findings };
}

async function isJsonError(res: Response): Promise<boolean> {
  if (res.status < 400) {
    await res.body?.cancel();
    return true;
  }
  try {
    const body = await res.json();
    return typeof body?.error?.code === "string" && typeof body?.error?.message === "string";
  } catch {
    return false;
  }
}

/** `count` garbage requests through the server's handler (no socket). */
export async function fuzzHandler(
  server: WorkyServer,
  seed: number,
  count: number,
): Promise<FuzzReport> {
  const r = rng(seed);
  const findings: string[] = [];
  let inputs = 0;
  for (let i = 0; i < count; i++) {
    const req = randomRequest(r, server.url);
    if (!req) continue;
    inputs++;
    try {
      const res = await server.fetch(req);
      if (!(await isJsonError(res))) {
        findings.push(`${req.method} ${req.url.slice(0, 200)}: ${res.status} without a JSON error`);
      }
    } catch (err) {
      findings.push(`${req.method} ${req.url.slice(0, 200)}: threw ${String(err).slice(0, 300)}`);
    }
  }
  return { inputs, findings };
}

/** `count` raw (often malformed) HTTP/1.1 requests over real sockets, `parallel` at a time. */
export async function fuzzSocket(
  server: WorkyServer,
  host: string,
  seed: number,
  count: number,
  parallel = 8,
): Promise<FuzzReport> {
  const r = rng(seed);
  const { port } = new URL(server.url);
  const findings: string[] = [];
  let next = 0;
  const one = async (raw: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
    try {
      await conn.write(new TextEncoder().encode(raw)).catch(() => {});
      const buf = new Uint8Array(512);
      const n = await conn.read(buf).catch(() => null);
      const head = n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
      // an answer with a status, or the connection closed on a request too broken to answer
      if (head !== "" && !/^HTTP\/1\.[01] [1-5]\d\d/.test(head)) {
        findings.push(
          `raw ${JSON.stringify(raw.slice(0, 200))}: answered ${JSON.stringify(head.slice(0, 80))}`,
        );
      }
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++;
      await one(randomRawRequest(r, host));
    }
  }));
  const health = await fetch(`${server.url}/_worky/health`);
  await health.body?.cancel();
  if (health.status !== 200) findings.push(`health is ${health.status} after the socket fuzz`);
  return { inputs: count, findings };
}
