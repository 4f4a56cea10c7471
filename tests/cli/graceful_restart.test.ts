/**
 * Zombie worker threads under a real supervised `worky serve`: a tenant stuck in `while (true) {}`
 * gets 504 after its `timeout_ms`, Deno's `terminate()` leaves its thread spinning, the server
 * finds the zombie, records the tenant in `<dataDir>/quarantine.json` and asks the supervisor for
 * a replacement; the supervisor starts the new server first on the same port (SO_REUSEPORT) and
 * only then stops the old one gracefully. A client hitting the good tenant all along sees only
 * 200s, the Durable Object the old process held is served by the new one at once (its lease was
 * released, not left to expire), and afterwards no core is pinned.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until, writeTree } from "../_helpers/fixture.ts";
import { startSupervised } from "../_helpers/worky_process.ts";
import { readQuarantine } from "../../runtime/memory/quarantine.ts";
import { statFields } from "../_helpers/sched_policy.ts";

let dir = "";
beforeAll(async () => {
  dir = await writeTree({
    "loop.ts": `export default { fetch() { while (true) {} } };`,
    "good.ts": `import { DurableObject } from "worky";
      export class Counter extends DurableObject {
        async fetch() {
          const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
          await this.ctx.storage.put("n", n);
          return new Response(String(n));
        }
      }
      export default { fetch(req, env) {
        if (new URL(req.url).pathname === "/good/do") {
          return env.COUNTER.get(env.COUNTER.idFromName("one")).fetch(req);
        }
        return new Response("good " + Deno.pid);
      } };`,
    "worky.toml": `[tenants.loop]\nmodule = "loop.ts"\nroutes = ["*/loop/*"]\n` +
      `[tenants.loop.limits]\ntimeout_ms = 300\n` +
      `[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n` +
      `[tenants.good.durable_objects]\nCOUNTER = "Counter"\n` +
      `[tenants.good.permissions]\nenv = true\n`,
  });
});
afterAll(async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
});

/** CPU seconds used by a process and its descendants (utime + stime of every thread). */
function treeTicks(root: number): number {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const ppid = Number(statFields(Number(e.name))[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e.name)]);
    } catch { /* gone */ }
  }
  let ticks = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    try {
      const fields = statFields(pid);
      ticks += Number(fields[11]) + Number(fields[12]); // utime + stime of all its threads
    } catch { /* gone */ }
    todo.push(...(children.get(pid) ?? []));
  }
  return ticks / 100;
}

describe("graceful restart after a zombie worker thread", () => {
  it("replaces the server without refusing a connection and frees the core", async () => {
    const { proc, lines } = startSupervised(`${dir}/worky.toml`);
    const msgs = () => lines.map((l) => String(l.msg));
    const pids = () =>
      lines.filter((l) => l.msg === "supervisor: server process started").map((l) => Number(l.pid));
    try {
      await until(() => msgs().some((m) => /listening on http/.test(m)), 30_000);
      const url = /listening on (http:\/\/[0-9.:]+)/.exec(
        msgs().find((m) => /listening/.test(m))!,
      )![1];
      const [first] = pids();
      expect(await (await fetch(`${url}/good/do`)).text()).toBe("1");

      // the good tenant, all through the zombie, the handoff and after
      const statuses = new Map<string, number>();
      const servedBy = new Set<string>();
      let running = true;
      const client = (async () => {
        while (running) {
          try {
            const res = await fetch(`${url}/good/`);
            const body = await res.text();
            statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
            servedBy.add(body);
          } catch (err) {
            const key = `error: ${(err as Error).message}`;
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
          }
        }
      })();

      const looped = await fetch(`${url}/loop/`);
      expect(looped.status).toBe(504);
      expect((await looped.json()).error.code).toBe("ERR_TENANT_TIMEOUT");

      await until(() => msgs().some((m) => m.startsWith("supervisor: handoff done")), 60_000);
      const zombie = lines.find((l) => l.code === "ERR_TENANT_ZOMBIE")!;
      expect(zombie).toMatchObject({ level: "error", tenant: "loop" });
      expect(String(zombie.thread)).toMatch(/^worker-\d+$/);
      expect(String(zombie.msg)).toContain(`thread ${zombie.thread}`);
      const second = pids()[1];
      expect(pids()).toEqual([first, second]); // a handoff, not a crash restart
      const done = lines.find((l) => String(l.msg).startsWith("supervisor: handoff done"))!;
      expect(done.msg).toMatch(
        new RegExp(`^supervisor: handoff done: process ${first} exited with code 0 `),
      );
      // the replacement listened before the old process was told to stop
      const sigterm = msgs().findIndex((m) =>
        m.endsWith(`stopping process ${first} gracefully (SIGTERM)`)
      );
      expect(sigterm).toBeGreaterThan(0);
      expect(msgs().slice(0, sigterm).filter((m) => m.startsWith("worky listening on")))
        .toHaveLength(2);
      expect(msgs().some((m) => /exited with code \d+.*restarting in/.test(m))).toBe(false);

      // the new process serves; the object the old one held is taken over without a lease wait
      await until(() => servedBy.has(`good ${second}`), 30_000);
      const counted = await fetch(`${url}/good/do`);
      expect(`${counted.status} ${await counted.text()}`).toBe("200 2");
      running = false;
      await client;
      expect(Object.fromEntries(statuses)).toEqual({ "200": expect.any(Number) });
      expect(servedBy).toEqual(new Set([`good ${first}`, `good ${second}`]));

      // the tenant is on record for the next start (and the cells engine)
      const q = await readQuarantine(`${dir}/.worky`);
      expect(q.loop).toMatchObject({ count: 1 });
      expect(q.loop.reason).toContain(`zombie thread ${zombie.thread}`);
      expect(Object.keys(q)).toEqual(["loop"]);

      // no core pinned any more: the whole tree (supervisor + server) is idle again
      const t0 = treeTicks(proc.pid), w0 = performance.now();
      await new Promise((r) => setTimeout(r, 1000));
      const cores = (treeTicks(proc.pid) - t0) / ((performance.now() - w0) / 1000);
      if (Deno.env.get("WORKY_TEST_VERBOSE")) {
        console.log(
          `graceful restart: ${statuses.get("200")} × 200 during the handoff; ` +
            `server tree CPU afterwards ${cores.toFixed(2)} cores`,
        );
      }
      expect(cores).toBeLessThan(0.5);

      proc.kill("SIGTERM");
      expect((await proc.status).code).toBe(0);
    } finally {
      try {
        proc.kill("SIGKILL");
      } catch { /* ended */ }
    }
  }, 120_000);

  it("unsupervised: logs the tenant and its zombie thread and keeps serving", async () => {
    const own = await writeTree({
      "loop.ts": `export default { fetch() { while (true) {} } };`,
      "good.ts": `export default { fetch: () => new Response("good") };`,
      "worky.toml": `[tenants.loop]\nmodule = "loop.ts"\nroutes = ["*/loop/*"]\n` +
        `[tenants.loop.limits]\ntimeout_ms = 300\n` +
        `[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n`,
    });
    const { proc, lines } = startSupervised(`${own}/worky.toml`, ["--no-supervise"]);
    const msgs = () => lines.map((l) => String(l.msg));
    try {
      await until(() => msgs().some((m) => /listening on http/.test(m)), 30_000);
      const url = /listening on (http:\/\/[0-9.:]+)/.exec(
        msgs().find((m) => /listening/.test(m))!,
      )![1];
      expect((await fetch(`${url}/loop/`)).status).toBe(504);
      await until(() => msgs().some((m) => m.startsWith("not supervised")), 30_000);
      const line = lines.find((l) => String(l.msg).startsWith("not supervised"))!;
      expect(line).toMatchObject({ level: "error", tenant: "loop" });
      expect(String(line.msg)).toMatch(
        new RegExp(`zombie thread ${line.thread} \\(tid \\d+\\) of tenant "loop" using a core`),
      );
      expect(msgs().some((m) => m.includes("asking the supervisor"))).toBe(false);
      const res = await fetch(`${url}/good/`);
      expect(`${res.status} ${await res.text()}`).toBe("200 good");
      // the tenant was moved into a cell of its own: its next loop ends with its cell, not here
      await until(
        () => msgs().some((m) => m.startsWith(`tenant "loop" moved into a cell`)),
        30_000,
      );
      const health = await (await fetch(`${url}/_worky/health`)).json();
      const loop = health.tenants.find((t: { tenant: string }) => t.tenant === "loop");
      expect(loop).toMatchObject({ isolation: "cell" });
      expect(loop.pid).toBeGreaterThan(0);
      expect((await fetch(`${url}/loop/`)).status).toBe(504);
      await until(
        () => msgs().some((m) => /cell of tenant "loop" \(pid \d+\) exited/.test(m)),
        30_000,
      );
      expect(lines.filter((l) => l.code === "ERR_TENANT_ZOMBIE")).toHaveLength(1);
      expect((await readQuarantine(`${own}/.worky`)).loop.reason).toContain(
        `zombie thread ${line.thread}`,
      );
      // SIGTERM still stops it gracefully, zombie thread and all
      proc.kill("SIGTERM");
      expect((await proc.status).code).toBe(0);
    } finally {
      try {
        proc.kill("SIGKILL");
      } catch { /* ended */ }
      await Deno.remove(own, { recursive: true });
    }
  }, 60_000);
});
