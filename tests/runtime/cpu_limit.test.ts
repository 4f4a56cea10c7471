/**
 * `limits.cpu_ms`: an event that burns more CPU than its limit gets 503 ERR_TENANT_CPU_LIMIT long
 * before its wall-clock timeout, whether it spins in one stretch or in short slices; an event
 * that waits (timers, I/O) uses no CPU and is not cut off; light concurrent events sharing a
 * worker are not either; CPU burned while a body streams counts; a worker that ran a CPU-heavy
 * event drops to nice 19. Real server, real
 * workers, the threads' CPU read from /proc: in-process (isolation = "thread", the server reads
 * its own threads) and in a cell (the server reads the cell's threads: the cell can't,
 * control-plane/cells/cell_cpu.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../_helpers/fixture.ts";
import { threadNice } from "../_helpers/sched_policy.ts";
import type { Deployment } from "../../runtime/deployment.ts";
import type { CellDeployment } from "../../control-plane/cells/cell_deployment.ts";

const TENANT = `
  export default {
    async fetch(req: Request) {
      const path = new URL(req.url).pathname.split("/")[2];
      if (path === "spin") { while (true) {} }
      if (path === "slices") { // 10 ms of work, then yield, for ever
        for (;;) {
          const end = performance.now() + 10;
          while (performance.now() < end) {}
          await new Promise((r) => setTimeout(r, 0));
        }
      }
      if (path === "wait") await new Promise((r) => setTimeout(r, 1_500));
      if (path === "stream") { // the head at once, then 20 ms of work per chunk, 100 chunks
        const enc = new TextEncoder();
        let n = 0;
        return new Response(new ReadableStream({
          pull(c) {
            const end = performance.now() + 20;
            while (performance.now() < end) {}
            if (n++ < 100) c.enqueue(enc.encode("x"));
            else c.close();
          },
        }));
      }
      if (path === "heavy") { const end = performance.now() + 120; while (performance.now() < end) {} }
      return new Response("ok");
    },
  };`;

const canMeasure = (() => {
  try {
    Deno.readTextFileSync("/proc/self/schedstat");
    return true;
  } catch {
    return false;
  }
})();

/** Niceness of the worker threads of process `pid` (Deno names them `worker-<n>`). */
function workerNices(pid: number): number[] {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].flatMap((t) => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
      if (!stat.includes("(worker-")) return [];
      return [Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])];
    } catch {
      return []; // it ended
    }
  });
}

describe.skipIf(!canMeasure).each(["thread", "cell"])(
  "limits.cpu_ms, isolation = %s",
  (isolation) => {
    let fx: Fixture;
    beforeAll(async () => {
      fx = await startFixture({
        "t.ts": TENANT,
        // one tenant per case that burns CPU: a breach demotes the tenant (SCHED_IDLE), and on a
        // machine loaded by the other test files the next case would starve there
        "worky.toml": ["c", "d", "e", "f"].map((t) =>
          `[tenants.${t}]\nmodule = "t.ts"\nroutes = ["*/${t}/*"]\n[tenants.${t}.limits]\n` +
          `cpu_ms = 200\ntimeout_ms = 20000\nisolation = "${isolation}"\n`
        ).join(""),
      });
    }, 60_000);
    afterAll(() => fx?.close());

    const timed = async (path: string) => {
      const t = performance.now();
      const res = await fx.fetch(path);
      const body = await res.json().catch(() => null);
      return { status: res.status, body, ms: performance.now() - t };
    };

    it("cuts off a busy loop near its CPU limit, far before its timeout", async () => {
      const r = await timed("/c/spin");
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe("ERR_TENANT_CPU_LIMIT");
      expect(r.body.error.message).toContain("more than 200 ms of CPU (limits.cpu_ms)");
      expect(r.ms).toBeLessThan(5_000);
      expect((await timed("/c/x")).status).toBe(200); // and the tenant serves again
    });

    it("adds up CPU spent in short slices", async () => {
      const r = await timed("/d/slices");
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe("ERR_TENANT_CPU_LIMIT");
    });

    it("charges CPU burned while the body streams, after the head", async () => {
      const res = await fx.fetch("/e/stream");
      expect(res.status).toBe(200); // the head left before the limit
      // 100 chunks of 20 ms: the body is cut off near 200 ms, long before it is all there
      const body = await res.text().catch(() => "");
      expect(body.length).toBeLessThan(50);
      await until(async () => (await timed("/e/x")).status === 200); // then it serves again
    });

    it("does not count waiting, nor light events sharing the worker", async () => {
      const light = Array.from({ length: 20 }, () => timed("/f/x"));
      const r = await timed("/f/wait"); // 1.5 s in flight, ~0 CPU of its own
      expect(r.status).toBe(200);
      expect((await Promise.all(light)).every((x) => x.status === 200)).toBe(true);
    });

    it("a worker that ran a CPU-heavy event (≥ 50 ms) yields: its thread drops to nice 19", async () => {
      const current = () => fx.server.deployments.get("f")!.current;
      const nices = () =>
        isolation === "thread"
          ? (current() as Deployment).pool.threads.map((t) => threadNice(t.tid))
          : workerNices((current() as CellDeployment).stats().pid!);
      await timed("/f/x");
      expect(nices().includes(19)).toBe(false); // short events: nothing changes
      expect((await timed("/f/heavy")).status).toBe(200); // 120 ms of CPU, under cpu_ms
      await until(() => nices().includes(19));
    });
  },
);

describe.each(["thread", "cell"])("a streamed body, isolation = %s", (isolation) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      // /s/: a chunk every 100 ms for 1 s, ten times its timeout_ms of wall clock, almost no CPU;
      // /s/late: 300 ms of waiting (past timeout_ms), then 20 ms of CPU per chunk, 100 chunks
      "s.ts": `export default { fetch(req) {
        const late = req.url.endsWith("/late");
        let n = 0;
        return new Response(new ReadableStream({
          async pull(c) {
            if (late) {
              if (n === 0) await new Promise((r) => setTimeout(r, 300));
              const end = performance.now() + 20;
              while (performance.now() < end) {}
            } else await new Promise((r) => setTimeout(r, 100));
            if (n++ < (late ? 100 : 10)) c.enqueue(new TextEncoder().encode("x"));
            else c.close();
          },
        }));
      } };`,
      "worky.toml": `[tenants.s]\nmodule = "s.ts"\nroutes = ["*/s/*"]\n` +
        `[tenants.s.limits]\ncpu_ms = 200\ntimeout_ms = 100\nisolation = "${isolation}"\n`,
    });
  }, 60_000);
  afterAll(() => fx?.close());

  it("runs past timeout_ms: a long download is no timeout; its CPU is what is limited", async () => {
    const res = await fx.fetch("/s/");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("x".repeat(10));
  });

  it("is still charged for CPU past timeout_ms", async () => {
    const res = await fx.fetch("/s/late");
    expect(res.status).toBe(200);
    expect((await res.text().catch(() => "")).length).toBeLessThan(50);
  });
});
