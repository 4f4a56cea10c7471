/**
 * A tenant allocating in a tight synchronous loop (it never yields to its heap sampler) under
 * a real supervised `worky serve` child process: its request gets 503 ERR_TENANT_MEMORY from
 * the host's memory watchdog; the other tenant answers 200 to every request it gets an HTTP
 * answer to; the worky service (the supervisor's process, which restarts its server when the
 * runaway thread Deno can't stop would abort it) stays up and serves the tenant's next
 * normal request. V8 never gets to abort the process (exit 133).
 */
import { afterAll, beforeAll, expect } from "vitest";
import { until, writeTree } from "../_helpers/fixture.ts";
import { startSupervised } from "../_helpers/worky_process.ts";
import { attempt } from "./_summary.ts";

let dir = "";
let proc: Deno.ChildProcess | undefined;
let lines: Record<string, unknown>[] = [];
let url = "";

beforeAll(async () => {
  dir = await writeTree({
    "a.ts": `export default { fetch(req) {
      if (new URL(req.url).pathname.endsWith("/ok")) return new Response("a ok");
      const a = [];
      while (true) a.push(new Array(1e6).fill(1));
    } };`,
    "b.ts": `export default { fetch: () => new Response("b") };`,
    "worky.toml": `[tenants.a]\nmodule = "a.ts"\nroutes = ["*/a/*"]\n` +
      `[tenants.a.limits]\nmemory_mb = 64\n` +
      `[tenants.b]\nmodule = "b.ts"\nroutes = ["*/b/*"]\n`,
  });
  const started = startSupervised(`${dir}/worky.toml`);
  proc = started.proc;
  lines = started.lines;
  await until(() => lines.some((l) => /listening on http/.test(String(l.msg))), 30_000);
  url = /listening on (http:\/\/[0-9.:]+)/.exec(
    String(lines.find((l) => /listening on http/.test(String(l.msg)))!.msg),
  )![1];
}, 60_000);

afterAll(async () => {
  try {
    proc?.kill("SIGTERM");
    await proc?.status;
  } catch { /* ended */ }
  if (dir) await Deno.remove(dir, { recursive: true });
});

attempt("allocate in a tight synchronous loop (abort the whole process)", async () => {
  // a client loop to the other tenant, all through the attack and the restart
  const statuses = new Map<number, number>();
  let refused = 0;
  let running = true;
  const other = (async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/b/`);
        const body = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 200) expect(body).toBe("b");
      } catch {
        refused++; // no listener while the supervisor restarts the server
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();

  const res = await fetch(`${url}/a/`);
  const body = await res.json();
  expect(res.status).toBe(503);
  expect(body.error.code).toBe("ERR_TENANT_MEMORY");
  expect(body.error.message).toMatch(
    /^tenant "a": worker ran without yielding while the process grew by \d+ MiB, over its limit of 64 MiB \(limits.memory_mb\)/,
  );

  // the tenant's next normal request is served by the same service
  let next = "";
  await until(async () => {
    try {
      const r = await fetch(`${url}/a/ok`);
      next = `${r.status} ${await r.text()}`;
    } catch { /* restarting */ }
    return next === "200 a ok";
  }, 30_000);
  // until the watchdog is done with the stopped thread: it freed its memory, or it was a
  // runaway and the supervisor replaced the server (graceful handoff) or restarted it
  await until(
    () =>
      lines.some((l) =>
        /^memory watchdog: no runaway/.test(String(l.msg)) ||
        /^supervisor: server process \d+ exited/.test(String(l.msg)) ||
        /^supervisor: handoff done/.test(String(l.msg))
      ),
    30_000,
  );
  await until(() => (statuses.get(200) ?? 0) > 20, 30_000);
  running = false;
  await other;

  // the other tenant never got an error answer
  expect([...statuses.keys()]).toEqual([200]);
  // the supervisor is up; if it restarted the server, that was the watchdog's exit 75, never
  // V8's abort (133)
  const exits = lines.filter((l) => String(l.msg).startsWith("supervisor: server process"))
    .filter((l) => "code" in l);
  for (const e of exits) expect(e.code).toBe(75);
  if (refused > 0) expect(exits.length).toBe(1);
  expect(await Promise.race([proc!.status, new Promise((r) => setTimeout(r, 50, "alive"))]))
    .toBe("alive");
  if (Deno.env.get("DEBUG_SYNC_LOOP")) console.log(lines.map((l) => JSON.stringify(l)).join("\n"));
  if (Deno.env.get("WORKY_TEST_VERBOSE")) {
    console.log(
      `sync-loop attack: other tenant ${statuses.get(200)} × 200, ${refused} refused connections ` +
        `during ${exits.length} server restart(s)`,
    );
  }
}, 90_000);
