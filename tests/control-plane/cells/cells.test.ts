/**
 * Tenants in cells (`limits.isolation = "cell"`, or quarantined): each runs in a child process
 * of its own (control-plane/cells/, runtime/cells/cell_main.ts), reached over a unix socket.
 * Real processes throughout: the fixture server in this process, real cell processes, real
 * libSQL files, and for the out-of-memory case a real Worky child process.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Fixture,
  rawRequest,
  startFixture,
  until,
  writeTree,
} from "../../_helpers/fixture.ts";
import { startWorkyChild, type WorkyProcess } from "../../_helpers/worky_process.ts";
import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";
import type { CellDeployment } from "../../../control-plane/cells/cell_deployment.ts";
import { recordQuarantine } from "../../../runtime/memory/quarantine.ts";
import { policiesOf, SCHED_IDLE, statFields } from "../../_helpers/sched_policy.ts";
import { reaperAvailable } from "../../../control-plane/cells/cell_reaper.ts";
import { connect } from "../../runtime/websocket/_client.ts";

const CELL_TENANT = `export default {
  async fetch(req, env, ctx) {
    const path = new URL(req.url).pathname;
    if (path.endsWith("/kv")) {
      await env.KV.put("k", "from the cell");
      return new Response(await env.KV.get("k"));
    }
    if (path.endsWith("/echo")) {
      let n = 0, chunks = 0;
      for await (const c of req.body) { n += c.length; chunks++; }
      return new Response(JSON.stringify({ n, chunks, method: req.method, url: req.url,
        header: req.headers.get("x-test") }));
    }
    if (path.endsWith("/stream")) {
      const enc = new TextEncoder();
      return new Response(new ReadableStream({
        async start(c) {
          for (let i = 0; i < 3; i++) { c.enqueue(enc.encode("part" + i + ";")); await new Promise((r) => setTimeout(r, 5)); }
          c.close();
        },
      }));
    }
    if (path.endsWith("/loop")) { while (true) {} }
    if (path.endsWith("/ae")) return new Response(String(req.headers.get("accept-encoding")));
    if (path.endsWith("/gz")) {
      const gz = new Blob(["compressed by the tenant"]).stream().pipeThrough(new CompressionStream("gzip"));
      return new Response(gz, { headers: { "content-encoding": "gzip" } });
    }
    if (path.endsWith("/secret")) return new Response(String(env.GREETING));
    if (path.endsWith("/ws")) {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.send("welcome from " + (typeof Deno.pid === "number" ? "pid " + Deno.pid : "a cell"));
      server.addEventListener("message", (e) => {
        if (e.data === "bye") server.close(4001, "bye from the cell");
        else server.send(typeof e.data === "string" ? "echo:" + e.data : e.data);
      });
      server.addEventListener("close", (e) => env.KV.put("wsclose", e.code + " " + e.reason));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (path.endsWith("/wsquick")) { // says one thing and closes before the client is upgraded
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.send("quick");
      server.close(4003, "done at once");
      return new Response(null, { status: 101, webSocket: client });
    }
    if (path.endsWith("/wsclose")) return new Response(String(await env.KV.get("wsclose")));
    if (path.endsWith("/nows")) return new Response("no upgrade here", { status: 426 });
    return new Response("hello from pid-less cell " + req.method);
  },
  async scheduled(event, env) { await env.KV.put("cron", event.cron); },
};`;

/** CPU time of this process (all its threads), ms. */
function ownCpuMs(): number {
  const f = statFields("self");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Whether process `pid` has libSQL's native module mapped (it loaded `@libsql/client`). */
function loadedLibsql(pid: number): boolean {
  return /\/@libsql\/[^/\n]+\/[^/\n]+\.node$/m.test(Deno.readTextFileSync(`/proc/${pid}/maps`));
}

function cellOf(fx: Fixture, tenant: string): CellDeployment {
  return fx.server.deployments.get(tenant)!.current as CellDeployment;
}

describe('a tenant with isolation = "cell"', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      "cell.ts": CELL_TENANT,
      "thread.ts": `export default { fetch: () => new Response("thread ok") };`,
      "worky.toml": `[tenants.celly]\nmodule = "cell.ts"\nroutes = ["*/c/*"]\nkv = ["KV"]\n` +
        `vars = { GREETING = "hi" }\n` +
        `[tenants.celly.limits]\nisolation = "cell"\ntimeout_ms = 1000\n` +
        `[tenants.thready]\nmodule = "thread.ts"\nroutes = ["*/t/*"]\n`,
    });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
    if (fx) await Deno.remove(fx.dir, { recursive: true });
  });

  it("runs in a child process of its own and serves GET, vars and KV", async () => {
    const stats = cellOf(fx, "celly").stats();
    expect(stats.isolation).toBe("cell");
    expect(stats.pid).toBeGreaterThan(0);
    expect(stats.pid).not.toBe(Deno.pid);
    // an untrusted cell runs at a lower CPU priority than this server (nice 10)
    const niceOf = (pid: number) => Number(statFields(pid)[16]);
    expect(niceOf(stats.pid!) - niceOf(Deno.pid)).toBe(10);
    expect(policiesOf(stats.pid!).every((p) => p === 0)).toBe(true); // SCHED_OTHER until it misbehaves
    if (reaperAvailable) {
      // so does its reaper `sh`: reaping a cell is work done for the cell (cell_process.ts)
      const reaper = Number(statFields(stats.pid!)[1]);
      expect(reaper).not.toBe(Deno.pid);
      expect(niceOf(reaper) - niceOf(Deno.pid)).toBe(10);
    }
    expect(await (await fx.fetch("/c/")).text()).toBe("hello from pid-less cell GET");
    expect(await (await fx.fetch("/c/secret")).text()).toBe("hi");
    const kv = await fx.fetch("/c/kv");
    expect(kv.status).toBe(200);
    expect(await kv.text()).toBe("from the cell");
    if (Deno.build.os === "linux") expect(loadedLibsql(stats.pid!)).toBe(true); // see below
    // the cell wrote the control plane's database
    const entry = await new LibsqlKvStore(fx.server.db).get("celly/KV", "k", Date.now());
    expect(new TextDecoder().decode(entry!.value)).toBe("from the cell");
    expect(await (await fx.fetch("/t/")).text()).toBe("thread ok");
    expect(
      (fx.server.deployments.get("thready")!.current.stats() as { isolation?: string })
        .isolation,
    ).toBeUndefined();
  });

  it("streams a request body in and a response body out, with the original URL", async () => {
    const enc = new TextEncoder();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 20) c.enqueue(enc.encode("x".repeat(10_000)));
        else c.close();
      },
    });
    const res = await fx.fetch("/c/echo?q=1", {
      method: "POST",
      body,
      headers: { "x-test": "yes" },
      // @ts-ignore: streamed request body
      duplex: "half",
    });
    expect(res.status).toBe(200);
    const got = await res.json();
    expect(got).toMatchObject({ n: 200_000, method: "POST", header: "yes" });
    expect(got.url).toBe(`${fx.url}/c/echo?q=1`);
    const streamed = await fx.fetch("/c/stream");
    expect(await streamed.text()).toBe("part0;part1;part2;");
  });

  it("passes a tenant's content-encoding through untouched and adds no accept-encoding", async () => {
    const gz = await fx.fetch("/c/gz"); // fetch decodes the gzip body
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(await gz.text()).toBe("compressed by the tenant");
    const raw = await rawRequest(fx.url, "127.0.0.1", "/c/ae"); // sends no accept-encoding
    expect(["identity", "null"]).toContain(raw.body);
  });

  it("runs non-fetch events (scheduled) in the cell", async () => {
    const d = cellOf(fx, "celly");
    await d.event("scheduled", { cron: "*/5 * * * *", scheduledTime: Date.now() }, "req-cron");
    const entry = await new LibsqlKvStore(fx.server.db).get("celly/KV", "cron", Date.now());
    expect(new TextDecoder().decode(entry!.value)).toBe("*/5 * * * *");
  });

  it("relays WebSockets both ways: early frames, text, binary, closes with their codes", async () => {
    const ws = connect(`${fx.url}/c/ws`);
    await ws.opened;
    expect(String(await ws.next())).toMatch(/^welcome from /); // sent before the answer
    ws.send("hi");
    expect(await ws.next()).toBe("echo:hi");
    ws.send(new Uint8Array([1, 2, 3]));
    expect(new Uint8Array(await ws.next() as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));
    ws.send("bye");
    expect(await ws.closed).toMatchObject({ code: 4001, reason: "bye from the cell" });
  });

  it("a WebSocket the tenant closes at once still delivers its frame and its close", async () => {
    const ws = connect(`${fx.url}/c/wsquick`);
    expect(await ws.next()).toBe("quick");
    expect(await ws.closed).toMatchObject({ code: 4003, reason: "done at once" });
  });

  it("a client closing its WebSocket closes the tenant's side; refusals are 502", async () => {
    const ws = connect(`${fx.url}/c/ws`);
    await ws.opened;
    await ws.next();
    ws.close(4002, "client leaves");
    expect((await ws.closed).code).toBe(4002);
    await until(async () => (await (await fx.fetch("/c/wsclose")).text()) === "4002 client leaves");
    const refused = connect(`${fx.url}/c/nows`);
    await expect(refused.opened).rejects.toThrow();
    const res = await fx.fetch("/c/nows", {
      headers: {
        upgrade: "websocket",
        connection: "upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    expect(res.status).toBe(502);
    const body = await res.json();
    expect(body.error.code).toBe("ERR_TENANT_REFUSED_UPGRADE");
    expect(body.error.message).toContain('tenant "celly" (in a cell) did not accept');
  });

  it("a while(true) request gets 504, the cell is replaced and no thread spins here", async () => {
    const before = cellOf(fx, "celly").stats().pid;
    const res = await fx.fetch("/c/loop");
    expect(res.status).toBe(504);
    expect((await res.json()).error.code).toBe("ERR_TENANT_TIMEOUT");
    await until(() => {
      const s = cellOf(fx, "celly").stats();
      return s.pid !== before && s.workers === 1 && s.recycled >= 1;
    }, 15_000);
    expect(fx.logger.entries.some((e) => /exited with code 137 \(signal SIGKILL\)/.test(e.msg)))
      .toBe(true);
    // the next request is served by the new cell, which runs at idle CPU priority from now on
    expect(await (await fx.fetch("/c/")).text()).toBe("hello from pid-less cell GET");
    const policies = policiesOf(cellOf(fx, "celly").stats().pid!);
    expect(policies.length).toBeGreaterThan(1);
    expect(policies.every((p) => p === SCHED_IDLE)).toBe(true);
    if (reaperAvailable) { // the new cell's reaper `sh` started at SCHED_IDLE too
      expect(policiesOf(Number(statFields(cellOf(fx, "celly").stats().pid!)[1])))
        .toEqual([SCHED_IDLE]);
    }
    expect(
      fx.logger.entries.some((e) => /now runs at idle CPU priority \(SCHED_IDLE\)/.test(e.msg)),
    )
      .toBe(true);
    // the loop ran in the (killed) cell: this process keeps no spinning thread
    const cpu0 = ownCpuMs(), t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = (ownCpuMs() - cpu0) / (performance.now() - t0);
    expect(busy).toBeLessThan(0.5); // a zombie thread would hold ~1.0
  });

  it("a cell killed from outside is restarted; a request in flight gets 502", async () => {
    const d = cellOf(fx, "celly");
    const run = d.cell.current!;
    const pending = fx.fetch("/c/loop"); // holds the cell busy
    await until(() => d.stats().inFlight > 0);
    if (reaperAvailable) {
      // the server (this process) is not the cell's parent: a reaper `sh` is (cell_reaper.ts)
      const ppid = (pid: number) => Number(statFields(pid)[1]);
      expect(ppid(run.pid)).not.toBe(Deno.pid);
      expect(ppid(ppid(run.pid))).toBe(Deno.pid);
      expect(Deno.readTextFileSync(`/proc/${ppid(run.pid)}/cmdline`)).toMatch(/^\/bin\/sh\0/);
    }
    Deno.kill(run.pid, "SIGKILL");
    const res = await pending;
    expect(res.status).toBe(502);
    const err = (await res.json()).error;
    expect(err.code).toBe("ERR_TENANT_CRASHED");
    expect(err.message).toMatch(/cell process \(pid \d+\) exited with code 137 \(signal SIGKILL\)/);
    expect(err.message).toContain(`pid ${run.pid}`);
    await until(async () => (await fx.fetch("/c/")).status === 200, 15_000);
    expect(d.stats().pid).not.toBe(run.pid);
  });
});

/** A server whose one tenant `name` (every route) runs `code` in a cell; started once per describe. */
function cellTenant(name: string, code: string): () => Fixture {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await startFixture({
      [`${name}.ts`]: code,
      "worky.toml": `[tenants.${name}]\nmodule = "${name}.ts"\nroutes = ["*/*"]\n` +
        `[tenants.${name}.limits]\nisolation = "cell"\n`,
    });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
    if (fx) await Deno.remove(fx.dir, { recursive: true });
  });
  return () => fx;
}

describe("a cell that keeps dying", () => {
  const server = cellTenant("dies", `export default { fetch: () => new Response("fine") };`);

  it("restarts at once, then backs off; while the wait is over 1 s requests get 503", async () => {
    const fx = server();
    const d = cellOf(fx, "dies");
    // deaths 1-5 within 10 s of their starts: restarts after 0, 100, 200, 400 and 800 ms
    for (let death = 1; death <= 5; death++) {
      const pid = d.cell.current!.pid;
      Deno.kill(pid, "SIGKILL");
      await until(async () => {
        const res = await fx.fetch("/");
        await res.body?.cancel();
        return res.status === 200 && d.stats().pid !== pid;
      }, 10_000);
    }
    Deno.kill(d.cell.current!.pid, "SIGKILL"); // the 6th: 1,600 ms
    let res = await fx.fetch("/");
    await until(async () => {
      await res.body?.cancel();
      res = await fx.fetch("/");
      return res.status === 503;
    }, 1_500);
    expect(res.headers.get("retry-after")).toBe("2");
    const err = (await res.json()).error;
    expect(err.code).toBe("ERR_TENANT_CRASH_LOOP");
    expect(err.message).toBe(
      'tenant "dies": its cell process keeps dying (6 times in a row); restarting in 2 s',
    );
    await until(async () => (await fx.fetch("/")).status === 200, 10_000);
  }, 60_000);
});

describe("a cell whose tenant throws", () => {
  const server = cellTenant(
    "bad",
    `export default { fetch(req) {
      if (req.url.endsWith("/throw")) throw new Error("tenant bug");
      return new Response("fine");
    } };`,
  );

  it("moves its live process to idle CPU priority and keeps serving", async () => {
    const fx = server();
    const pid = cellOf(fx, "bad").stats().pid!;
    expect(policiesOf(pid).every((p) => p === 0)).toBe(true);
    const res = await fx.fetch("/throw");
    expect(res.status).toBe(500);
    await res.body?.cancel();
    await until(() => policiesOf(pid).every((p) => p === SCHED_IDLE), 5_000);
    expect(cellOf(fx, "bad").stats().pid).toBe(pid); // demoted in place, not restarted
    if (reaperAvailable) { // its reaper `sh` with it
      const reaper = Number(statFields(pid)[1]);
      await until(() => policiesOf(reaper).every((p) => p === SCHED_IDLE), 5_000);
    }
    expect(await (await fx.fetch("/")).text()).toBe("fine");
  });
});

describe("a quarantined tenant", () => {
  let fx: Fixture;
  beforeAll(async () => {
    const dir = await writeTree({
      "q.ts": `export default { fetch: () => new Response("quarantined but serving") };`,
      "worky.toml": `[tenants.quar]\nmodule = "q.ts"\nroutes = ["*/q/*"]\n`,
    });
    await recordQuarantine(`${dir}/.worky`, "quar", "zombie thread worker-1 at 99% CPU");
    fx = await startFixture({}, { dir });
  }, 60_000);
  afterAll(async () => {
    await fx?.close();
    if (fx) await Deno.remove(fx.dir, { recursive: true });
  });

  it("runs in a cell of its own, which never loads libSQL: the tenant has no bindings", async () => {
    const stats = cellOf(fx, "quar").stats();
    expect(stats.isolation).toBe("cell");
    expect(stats.pid).not.toBe(Deno.pid);
    expect(await (await fx.fetch("/q/")).text()).toBe("quarantined but serving");
    // loading libSQL is most of a cell's start (runtime/cells/cell_storage.ts), paid again on
    // every restart of a crash-looping cell
    if (Deno.build.os === "linux") expect(loadedLibsql(stats.pid!)).toBe(false);
    expect(fx.logger.entries.some((e) => /runs in a cell of its own: quarantined 1×/.test(e.msg)))
      .toBe(true);
  });
});

describe("a tight allocation loop in a cell", () => {
  let dir = "";
  let worky: WorkyProcess;
  beforeAll(async () => {
    dir = await writeTree({
      "hog.ts": `export default { fetch(req) {
        if (new URL(req.url).pathname.endsWith("/ok")) return new Response("hog ok");
        const a = [];
        while (true) a.push(new Array(1e6).fill(1));
      } };`,
      "good.ts": `export default { fetch: () => new Response("good") };`,
      "worky.toml": `[tenants.hog]\nmodule = "hog.ts"\nroutes = ["*/hog/*"]\n` +
        `[tenants.hog.limits]\nisolation = "cell"\nmemory_mb = 64\n` +
        `[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n`,
    });
    worky = await startWorkyChild(`${dir}/worky.toml`);
  }, 60_000);
  afterAll(async () => {
    await worky?.stop("SIGTERM");
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("kills only the cell: the server lives, the other tenant answers throughout", async () => {
    let exited = false;
    worky.process.status.then(() => exited = true);
    const statuses = new Map<number, number>();
    let running = true;
    const other = (async () => {
      while (running) {
        const res = await fetch(`${worky.url}/good/`);
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    })();
    const res = await fetch(`${worky.url}/hog/`);
    const body = await res.json();
    expect([502, 503]).toContain(res.status);
    expect(["ERR_TENANT_CRASHED", "ERR_TENANT_MEMORY"]).toContain(body.error.code);
    // the hog's next request succeeds once its cell is back
    await until(async () => {
      const r = await fetch(`${worky.url}/hog/ok`);
      return r.status === 200 && (await r.text()) === "hog ok";
    }, 20_000);
    running = false;
    await other;
    expect(exited).toBe(false);
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)).toBeGreaterThan(0);
  }, 60_000);
});
