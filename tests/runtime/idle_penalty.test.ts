/**
 * A tenant whose worker was stopped for an event past its time limit or memory past its limit
 * runs its worker threads at SCHED_IDLE for a while (live and new ones); other tenants keep the
 * normal policy; an exception costs neither a respawn nor the penalty. Real server, real workers,
 * policies read from /proc; the penalty's lapse is driven by a ManualClock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../_helpers/fixture.ts";
import { SCHED_IDLE, threadPolicy } from "../_helpers/sched_policy.ts";
import { ManualClock } from "../../runtime/clock.ts";
import { canIdle } from "../../runtime/memory/cpu_priority.ts";
import { IDLE_PENALTY_MS, type WorkerPool } from "../../runtime/worker_pool.ts";
import type { Deployment } from "../../runtime/deployment.ts";

const TENANT = `
  export default {
    async fetch(req: Request) {
      const path = new URL(req.url).pathname.split("/")[2];
      if (path === "wait") await new Promise((r) => setTimeout(r, 5_000)); // past timeout_ms
      if (path === "brief") await new Promise((r) => setTimeout(r, 300));
      if (path === "throw") throw new Error("thrown on purpose");
      if (path === "hog") {
        const keep = [];
        for (let i = 0; i < 300; i++) {
          keep.push(new Array(256 * 1024).fill(i + 0.5)); // ~2 MB of heap per step
          await new Promise((r) => setTimeout(r, 2));
        }
        return new Response("allocated " + keep.length);
      }
      return new Response("ok");
    },
  };`;

const tenant = (name: string) =>
  `[tenants.${name}]\nmodule = "t.ts"\nroutes = ["*/${name}/*"]\n` +
  `[tenants.${name}.limits]\ntimeout_ms = 1000\nmemory_mb = 48\nmax_workers = 2\n` +
  `max_concurrency_per_worker = 1\nisolation = "thread"\n`; // in-process: this is about threads

describe.skipIf(!canIdle)("idle CPU priority for a misbehaving tenant's threads", () => {
  let fx: Fixture;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    fx = await startFixture({
      "t.ts": TENANT,
      "worky.toml": tenant("slow") + tenant("hog") + tenant("calm"),
    }, { clock });
  });
  afterAll(() => fx?.close());

  const pool = (name: string): WorkerPool =>
    (fx.server.deployments.get(name)!.current as Deployment).pool;
  const policies = (name: string) => pool(name).threads.map((t) => threadPolicy(t.tid));
  const ok = async (path: string) => {
    const res = await fx.fetch(path);
    expect(res.status).toBe(200);
    await res.body?.cancel();
  };

  it("an exception is a 500 on the same worker: no respawn, no penalty", async () => {
    await ok("/calm/x");
    const before = pool("calm").recycled;
    for (let i = 0; i < 3; i++) {
      const res = await fx.fetch("/calm/throw");
      expect(res.status).toBe(500);
      expect((await res.json()).error.code).toBe("ERR_TENANT_EXCEPTION");
    }
    await ok("/calm/x");
    expect(pool("calm").recycled).toBe(before);
    expect(pool("calm").idle).toBe(false);
    expect(policies("calm")).toEqual([0]);
  });

  it("a timeout puts the tenant's live and new threads at SCHED_IDLE, not others'", async () => {
    await ok("/slow/x");
    expect(policies("slow")).toEqual([0]);
    const res = await fx.fetch("/slow/wait");
    expect(res.status).toBe(504);
    await res.body?.cancel();
    expect(pool("slow").idle).toBe(true);
    expect(fx.server.deployments.get("slow")!.current.stats()).toMatchObject({ idle: true });
    await Promise.all([ok("/slow/brief"), ok("/slow/brief")]); // two workers, both new
    expect(pool("slow").threads.length).toBe(2);
    await until(() => policies("slow").every((p) => p === SCHED_IDLE)); // `chrt` runs async
    expect(policies("calm")).toEqual([0]);
    expect(
      fx.logger.entries.some((e) =>
        e.tenant === "slow" && /runs at idle CPU priority for 60 s/.test(e.msg)
      ),
    ).toBe(true);
  });

  it("after the penalty lapses, new workers run normally again", async () => {
    clock.advance(IDLE_PENALTY_MS + 1);
    expect(pool("slow").idle).toBe(false);
    for (const w of pool("slow").threads) expect(threadPolicy(w.tid)).toBe(SCHED_IDLE);
    while (pool("slow").size > 0) pool("slow").pick().kill("test: its demoted workers go");
    await ok("/slow/x"); // on a new worker
    expect(policies("slow")).toEqual([0]);
  });

  it("a memory kill does the same", async () => {
    await ok("/hog/x");
    const res = await fx.fetch("/hog/hog");
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe("ERR_TENANT_MEMORY");
    expect(pool("hog").idle).toBe(true);
    await ok("/hog/x");
    await until(() => policies("hog").every((p) => p === SCHED_IDLE));
    expect(policies("calm")).toEqual([0]);
  }, 30_000);
});
