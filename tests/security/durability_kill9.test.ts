/**
 * Durability through the whole stack: a real `worky serve` child process
 * takes KV writes over HTTP from concurrent clients; it is killed with
 * SIGKILL mid-load and started again on the same data dir. Every write that
 * was acknowledged (200) before the kill is there afterwards.
 */
import { afterAll, expect, it } from "vitest";
import { REPO, writeTree } from "../_helpers/fixture.ts";

const CLIENTS = 8;
const KILL_AFTER = 300;
let dir = "";
let child: Deno.ChildProcess | undefined;
afterAll(async () => {
  try {
    child?.kill("SIGKILL");
    await child?.status;
  } catch { /* already gone */ }
  if (dir) await Deno.remove(dir, { recursive: true });
});

const TENANT = `export default { async fetch(req, env) {
  const url = new URL(req.url);
  if (url.pathname === "/put") {
    await env.STORE.put(url.searchParams.get("k"), "v-" + url.searchParams.get("k"));
    return new Response("ok");
  }
  const keys = await req.json();
  const missing = [];
  for (const k of keys) if ((await env.STORE.get(k)) !== "v-" + k) missing.push(k);
  return Response.json(missing);
} };`;

async function startWorky(): Promise<{ proc: Deno.ChildProcess; url: string }> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      `${REPO}cli/main.ts`,
      "serve",
      "--config",
      `${dir}/worky.toml`,
      "--port",
      "0",
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`worky exited before listening: ${seen}`);
    seen += value;
    const m = seen.match(/listening on (http:\/\/[0-9.:]+)/);
    if (m) {
      // keep draining stdout so the child never blocks on a full pipe
      (async () => {
        while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
      })();
      return { proc, url: m[1] };
    }
  }
}

it("kill -9 under KV write load loses no acknowledged write", async () => {
  dir = await writeTree({
    "kv.ts": TENANT,
    "worky.toml": `[tenants.kv]\nmodule = "kv.ts"\nroutes = ["*/*"]\nkv = ["STORE"]\n`,
  });
  const first = await startWorky();
  child = first.proc;
  const acked: string[] = [];
  let killed = false;
  let next = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (!killed) {
      const k = `key-${next++}`;
      try {
        const res = await fetch(`${first.url}/put?k=${k}`, { method: "POST" });
        if ((await res.text()) === "ok" && res.status === 200) acked.push(k);
      } catch {
        return; // the server is gone
      }
      if (!killed && acked.length >= KILL_AFTER) {
        killed = true;
        first.proc.kill("SIGKILL");
      }
    }
  }));
  const status = await first.proc.status;
  expect(status.signal).toBe("SIGKILL");
  expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER);

  const second = await startWorky();
  child = second.proc;
  const res = await fetch(`${second.url}/check`, { method: "POST", body: JSON.stringify(acked) });
  expect(await res.json()).toEqual([]);
  second.proc.kill("SIGTERM");
  await second.proc.status;
  child = undefined;
}, 120_000);
