/**
 * Durability through the whole stack: a real `worky serve` child process
 * takes KV writes over HTTP from concurrent clients; it is killed with
 * SIGKILL mid-load and started again on the same data dir. Every write that
 * was acknowledged (200) before the kill is there afterwards.
 */
import { afterAll, expect, it } from "vitest";
import { writeTree } from "../_helpers/fixture.ts";
import { serveWorky, type WorkyProcess } from "../_helpers/worky_process.ts";

const CLIENTS = 8;
const KILL_AFTER = 300;
let dir = "";
let child: WorkyProcess | undefined;
afterAll(async () => {
  await child?.stop();
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

it("kill -9 under KV write load loses no acknowledged write", async () => {
  dir = await writeTree({
    "kv.ts": TENANT,
    "worky.toml": `[tenants.kv]\nmodule = "kv.ts"\nroutes = ["*/*"]\nkv = ["STORE"]\n`,
  });
  const first = await serveWorky(`${dir}/worky.toml`);
  child = first;
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
        first.process.kill("SIGKILL");
      }
    }
  }));
  const status = await first.stop();
  expect(status.signal).toBe("SIGKILL");
  expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER);

  const second = await serveWorky(`${dir}/worky.toml`);
  child = second;
  const res = await fetch(`${second.url}/check`, { method: "POST", body: JSON.stringify(acked) });
  expect(await res.json()).toEqual([]);
  await second.stop("SIGTERM");
  child = undefined;
}, 120_000);
