/**
 * `isolation = "auto"` (the default): a tenant whose workers died twice within 10 s, or one of
 * whose workers was stopped for memory or CPU (a timeout that burned CPU counts), ended by
 * `Deno.exit`, or whose big bodies load the host thread, moves into a cell of its own until its
 * next deploy; `isolation = "thread"` keeps it in-process. Real server, real workers, real cell
 * processes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fixture, startFixture, until } from "../../_helpers/fixture.ts";
import { Deployment } from "../../../runtime/deployment.ts";
import { canIdle } from "../../../runtime/memory/cpu_priority.ts";
import { policiesOf, SCHED_IDLE } from "../../_helpers/sched_policy.ts";
import { CellMoves } from "../../../control-plane/cells/cell_moves.ts";

const TENANT = `export default {
  async fetch(req) {
    if (new URL(req.url).pathname.endsWith("/exit")) Deno.exit(1);
    if (new URL(req.url).pathname.endsWith("/hang")) await new Promise(() => {});
    if (new URL(req.url).pathname.endsWith("/spin")) { const end = Date.now() + 1000; while (Date.now() < end); }
    if (new URL(req.url).pathname.endsWith("/big")) return new Response(new Uint8Array(8 << 20).fill(7));
    if (new URL(req.url).pathname.endsWith("/stream")) {
      let n = 0; // 8 MiB in 1 MiB chunks, each made when the reader asks for it
      return new Response(new ReadableStream({
        pull(c) { if (n++ === 8) c.close(); else c.enqueue(new Uint8Array(1 << 20).fill(7)); },
      }));
    }
    if (new URL(req.url).pathname.endsWith("/pid")) return new Response(String(Deno.pid));
    if (new URL(req.url).pathname.endsWith("/slow")) await new Promise((r) => setTimeout(r, 1500));
    if (new URL(req.url).pathname.endsWith("/hog")) {
      const keep = [];
      for (let i = 0; i < 300; i++) {
        keep.push(new Array(256 * 1024).fill(i + 0.5)); // ~2 MB of heap per step
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    return new Response("fine");
  },
};`;

const block = (name: string, isolation?: string, limits = "") =>
  `[tenants.${name}]\nmodule = "t.ts"\nroutes = ["*/${name}/*"]\n` +
  (isolation || limits
    ? `[tenants.${name}.limits]\n${isolation ? `isolation = "${isolation}"\n` : ""}${limits}`
    : "");

/**
 * A tenant answering 8 MiB bodies four at a time holds 64 MiB and more (each inline body is
 * copied once) plus what its collector has not freed yet: at the default 128 MiB the memory
 * rule, which is not what these tests are about, fired now and then.
 */
const roomy = (name: string, isolation?: string) => block(name, isolation, "memory_mb = 256\n");

/** The supervisor run the fixture's server belongs to (`cell_moves.ts` records under it). */
const RUN = "test-run";

describe("a crash-looping tenant", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      "t.ts": TENANT,
      "worky.toml": block("auto") + block("pinned", "thread") + block("hog") +
        `[tenants.hog.limits]\nmemory_mb = 48\n` + roomy("big") + roomy("modest") +
        roomy("bigpinned", "thread") + roomy("streamer") + block("slow") +
        `[tenants.slow.limits]\ntimeout_ms = 200\n` +
        block("spinner") + `[tenants.spinner.limits]\ntimeout_ms = 300\n` +
        block("queued") + `[tenants.queued.limits]\ntimeout_ms = 300\n` +
        block("mover", undefined, "max_concurrency_per_worker = 1\n"),
    }, { supervisorRun: RUN }); // moves are recorded, as under `worky serve`'s supervisor
  });
  afterAll(() => fx?.close());

  const crashLoop = async (name: string, times = 3) => {
    for (let i = 0; i < times; i++) {
      const res = await fx.fetch(`/${name}/exit`);
      expect(res.status).toBeGreaterThanOrEqual(500);
      await res.body?.cancel();
    }
  };
  const current = (name: string) => fx.server.deployments.get(name)!.current;
  /** The stats of `name`'s cell, or undefined while it runs in-process. */
  const cellStats = (name: string) => {
    const d = current(name);
    return d instanceof Deployment ? undefined : d.stats();
  };

  it('moves into a cell of its own with isolation = "auto", and serves from there', async () => {
    expect(current("auto")).toBeInstanceOf(Deployment);
    const inProcess = current("auto") as Deployment;
    await crashLoop("auto", 1); // Deno.exit ends a worker on purpose: once is enough
    // while its cell starts, no worker is started in-process for it: none is live, so its
    // requests wait for the cell and are served there
    const during = await fx.fetch("/auto/x");
    expect(cellStats("auto")?.isolation).toBe("cell");
    expect(during.status).toBe(200);
    expect(await during.text()).toBe("fine");
    expect(inProcess.pool.size).toBe(0);
    expect(inProcess.pool.recycled).toBe(1); // the death; nothing started after it
    await until(async () => (await (await fx.fetch("/auto/x")).text()) === "fine", 20_000);
    const pid = cellStats("auto")!.pid!;
    expect(pid).toBeGreaterThan(0);
    // it already misbehaved: its cell starts at SCHED_IDLE
    if (canIdle) expect(policiesOf(pid).every((p) => p === SCHED_IDLE)).toBe(true);
    expect(
      fx.logger.entries.some((e) =>
        e.tenant === "auto" &&
        /moved into a cell of its own: a worker was stopped: Deno.exit\(1\) called/.test(e.msg)
      ),
    ).toBe(true);
  }, 30_000);

  const moveLog = (name: string, why: RegExp) =>
    fx.logger.entries.some((e) =>
      e.tenant === name && /moved into a cell of its own/.test(e.msg) && why.test(e.msg)
    );

  it("moves after two timeouts that burned no CPU (a slow upstream looks the same)", async () => {
    const res = await fx.fetch("/slow/hang");
    expect(res.status).toBe(504);
    await res.body?.cancel();
    expect(current("slow")).toBeInstanceOf(Deployment); // once is not enough
    await (await fx.fetch("/slow/hang")).body?.cancel();
    await until(() => cellStats("slow")?.isolation === "cell", 20_000);
    expect(moveLog("slow", /its workers died twice within 10 s \(last: event exceeded 200 ms\)/))
      .toBe(true);
  }, 30_000);

  it("moves on its first timeout that burned CPU: a loop of its own", async () => {
    const res = await fx.fetch("/spinner/spin");
    expect(res.status).toBe(504);
    await res.body?.cancel();
    await until(() => cellStats("spinner")?.isolation === "cell", 20_000);
    expect(moveLog("spinner", /a worker was stopped: event exceeded 300 ms/)).toBe(true);
  }, 30_000);

  it("moves on that first timeout with many events queued behind the loop", async () => {
    // 16 requests on one worker: each one's equal share of the loop's CPU stays under the
    // heavy-event mark, the CPU burned without an answer does not
    const inProcess = current("queued") as Deployment;
    const statuses = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const res = await fx.fetch("/queued/spin");
        await res.body?.cancel();
        return res.status;
      }),
    );
    expect(statuses).toContain(504);
    expect(inProcess.pool.recycled).toBe(1); // one death
    await until(() => cellStats("queued")?.isolation === "cell", 20_000);
    expect(moveLog("queued", /a worker was stopped: event exceeded 300 ms/)).toBe(true);
  }, 30_000);

  it('stays in-process with isolation = "thread"', async () => {
    await crashLoop("pinned", 2);
    // not moving: the pool starts workers as before (the third death starts the cooldown)
    expect(await (await fx.fetch("/pinned/x")).text()).toBe("fine");
    await crashLoop("pinned");
    const res = await fx.fetch("/pinned/x");
    expect(res.status).toBe(503); // the in-process crash-loop cooldown
    expect((await res.json()).error.code).toBe("ERR_TENANT_CRASH_LOOP");
    expect(current("pinned")).toBeInstanceOf(Deployment);
  });

  it("moves on its first memory kill: its own code burns what the process shares", async () => {
    const res = await fx.fetch("/hog/hog");
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe("ERR_TENANT_MEMORY");
    await until(() => cellStats("hog")?.isolation === "cell", 20_000);
    expect(await (await fx.fetch("/hog/x")).text()).toBe("fine");
  }, 30_000);

  /** `n` 8 MiB answers of `name`, 4 at a time; each must arrive whole. */
  const bigBodies = async (name: string, n: number, path = "big") => {
    for (let i = 0; i < n; i += 4) {
      await Promise.all(
        Array.from({ length: Math.min(4, n - i) }, async () => {
          const body = new Uint8Array(await (await fx.fetch(`/${name}/${path}`)).arrayBuffer());
          if (body.byteLength !== 8 << 20) throw new Error(new TextDecoder().decode(body));
          expect(body[body.byteLength - 1]).toBe(7);
        }),
      );
    }
  };

  it("moves when its big bodies load the host thread: over 64 MiB within a second", async () => {
    await bigBodies("big", 12); // 96 MiB as fast as the machine answers
    // its cell is starting (or serves already): meanwhile its requests wait for the cell, even
    // with a worker live here, rather than put more bodies onto this heap
    expect(await (await fx.fetch("/big/pid")).text()).not.toBe(String(Deno.pid));
    expect(cellStats("big")?.isolation).toBe("cell");
    expect(
      fx.logger.entries.some((e) =>
        e.tenant === "big" &&
        /moved into a cell of its own: its responses put \d+ MiB onto the host thread within 1 s/
          .test(e.msg)
      ),
    ).toBe(true);
    await bigBodies("big", 4); // the cell relays them whole
    // heavy is not misbehaving: its cell runs at the cells' nice 10, not at SCHED_IDLE
    if (canIdle) expect(policiesOf(cellStats("big")!.pid!).includes(SCHED_IDLE)).toBe(false);
  }, 30_000);

  it("a tenant moved for its weight that then misbehaves in its cell is recorded so", async () => {
    const moves = new CellMoves(`${fx.dir}/.worky`, RUN);
    expect((await moves.read()).big).toMatchObject({ misbehaved: false }); // the test above
    const res = await fx.fetch("/big/exit"); // Deno.exit in its cell
    expect(res.status).toBeGreaterThanOrEqual(500);
    await res.body?.cancel();
    if (!canIdle) return; // no SCHED_IDLE here: nothing to demote to, nothing to record
    await until(() => policiesOf(cellStats("big")!.pid!).includes(SCHED_IDLE), 10_000);
    // the next process of this supervisor run starts its cell at SCHED_IDLE (`wants`)
    await until(async () => (await moves.read()).big?.misbehaved === true, 10_000);
    expect((await moves.read()).big.why).toMatch(
      /onto the host thread.*; then in its cell: its tenant failed with ERR_TENANT_CRASHED/,
    );
  }, 30_000);

  it(
    "a misbehaving tenant's events wait for its cell while it moves, though a worker lives here",
    async () => {
      const slow = fx.fetch("/mover/slow"); // keeps one worker here busy (1 event per worker)
      await until(() => fx.server.deployments.get("mover")!.current.stats().inFlight === 1);
      const exited = await fx.fetch("/mover/exit"); // a second worker, which exits: the move starts
      expect(exited.status).toBeGreaterThanOrEqual(500);
      await exited.body?.cancel();
      // the live worker here would take it at once; it waits for the cell instead
      expect(await (await fx.fetch("/mover/pid")).text()).not.toBe(String(Deno.pid));
      expect(cellStats("mover")?.isolation).toBe("cell");
      expect(await (await slow).text()).toBe("fine"); // the event already running here finished
    },
    30_000,
  );

  it("counts streamed bodies too: each chunk lands on the host thread's heap", async () => {
    await bigBodies("streamer", 12, "stream");
    expect(await (await fx.fetch("/streamer/pid")).text()).not.toBe(String(Deno.pid));
    expect(moveLog("streamer", /its responses put \d+ MiB onto the host thread within 1 s/))
      .toBe(true);
    await bigBodies("streamer", 4, "stream"); // the cell streams them whole
  }, 30_000);

  it('stays in-process under that budget, or with isolation = "thread"', async () => {
    await bigBodies("modest", 4); // 32 MiB: half the budget, however fast
    expect(current("modest")).toBeInstanceOf(Deployment);
    await bigBodies("bigpinned", 12);
    expect(current("bigpinned")).toBeInstanceOf(Deployment);
    expect(fx.logger.entries.some((e) => e.tenant === "bigpinned" && /cell/.test(e.msg))).toBe(
      false,
    );
    await bigBodies("bigpinned", 4); // still answering in-process
  }, 30_000);

  it("is back in-process after its next deploy", async () => {
    await fx.server.deployments.redeploy("auto");
    expect(current("auto")).toBeInstanceOf(Deployment);
    expect(await (await fx.fetch("/auto/x")).text()).toBe("fine");
  });
});
