/**
 * Queues end to end: a producer tenant's env.JOBS.send() → libSQL → the
 * consumer tenant's queue() in a real worker; acks, retries, dead-lettering,
 * delays and batching, with a ManualClock.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, startFixture } from "../../../_helpers/fixture.ts";
import { ManualClock } from "../../../../runtime/clock.ts";
import { parseConfig } from "../../../../control-plane/config/load_config.ts";

const PRODUCER = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? 1);
    const delaySeconds = Number(url.searchParams.get("delay") ?? 0);
    const mode = url.searchParams.get("mode") ?? "ok";
    try {
      if (url.pathname.endsWith("/big")) {
        await env.JOBS.send("x".repeat(129 * 1024), { contentType: "text" });
      } else if (n === 1) {
        await env.JOBS.send({ mode, at: new Date(0) }, { delaySeconds });
      } else {
        await env.JOBS.sendBatch(Array.from({ length: n }, (_, i) => ({ body: { mode, i }, contentType: "json" })));
      }
      return new Response("sent");
    } catch (err) {
      return new Response(err.message, { status: 500 });
    }
  },
};`;

const CONSUMER = `
export default {
  async fetch(request, env) {
    return new Response(await env.LOG.get("log") ?? "[]");
  },
  async queue(batch, env) {
    const log = JSON.parse(await env.LOG.get("log") ?? "[]");
    for (const m of batch.messages) {
      log.push({ queue: batch.queue, size: batch.messages.length, body: m.body, attempts: m.attempts,
        id: m.id, dateOk: m.body.at === undefined || m.body.at instanceof Date, ts: m.timestamp.getTime() });
    }
    await env.LOG.put("log", JSON.stringify(log));
    const modes = batch.messages.map((m) => m.body.mode);
    if (modes.includes("throw")) throw new Error("consumer failed on purpose");
    for (const m of batch.messages) {
      if (m.body.mode === "retry") m.retry();
      else if (m.body.mode === "retry-later") m.retry({ delaySeconds: 60 });
      else m.ack();
    }
  },
};`;

const TOML = `
[tenants.producer]
module = "producer.ts"
routes = ["producer.localhost/*", "*/produce/*"]
queues = { JOBS = "jobs" }

[tenants.consumer]
module = "consumer.ts"
routes = ["*/consume/*"]
kv = ["LOG"]

[[tenants.consumer.queue_consumers]]
queue = "jobs"
max_batch_size = 3
max_batch_timeout_ms = 1000
max_retries = 2
retry_delay_seconds = 10
retry_backoff = "exponential"
dead_letter_queue = "jobs-dlq"
`;

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const T0 = Date.UTC(2026, 0, 1);

async function start() {
  const clock = new ManualClock(T0);
  fx = await startFixture(
    { "producer.ts": PRODUCER, "consumer.ts": CONSUMER, "worky.toml": TOML },
    {
      clock,
    },
  );
  const f = fx;
  return {
    f,
    clock,
    send: async (query = "") => {
      const res = await f.fetch(`/produce/x${query}`);
      return [res.status, await res.text()] as const;
    },
    log: async () => await (await f.fetch("/consume/log")).json(),
    counts: async (queue: string) =>
      (await f.server.scheduler.queues.counts()).find((c) => c.queue === queue),
    /** Fires what is due until nothing is. */
    drain: async () => {
      for (let i = 0; i < 20; i++) if (await f.server.scheduler.runDue() === 0) return;
    },
  };
}

describe("queues", () => {
  it("send → persisted → batch delivered to queue() → acked", async () => {
    const q = await start();
    expect(await q.send("?n=3")).toEqual([200, "sent"]);
    // persisted before send() resolved: waiting, in flight, or (the started scheduler is
    // fast) already processed; counted first, so a message may show up in both
    const before = (await q.counts("jobs"))!;
    const processed = (await q.log()).length;
    expect(before.ready + before.inFlight + processed).toBeGreaterThanOrEqual(3);
    await q.drain();
    const log = await q.log();
    expect(log.map((e: { body: { i: number } }) => e.body.i)).toEqual([0, 1, 2]);
    expect(
      log.every((e: { size: number; attempts: number; queue: string }) =>
        e.size === 3 && e.attempts === 1 && e.queue === "jobs"
      ),
    ).toBe(true);
    expect(log[0].ts).toBe(T0);
    expect(await q.counts("jobs")).toMatchObject({ ready: 0, inFlight: 0, delayed: 0 });
  });

  it("v8 bodies keep Dates; a partial batch waits max_batch_timeout_ms", async () => {
    const q = await start();
    await q.send();
    await q.drain();
    expect(await q.log()).toEqual([]); // 1 of 3, waiting for more
    q.clock.advance(999);
    await q.drain();
    expect(await q.log()).toEqual([]);
    q.clock.advance(1);
    await q.drain();
    const log = await q.log();
    expect(log).toHaveLength(1);
    expect(log[0].dateOk).toBe(true);
  });

  it("delaySeconds holds a message back", async () => {
    const q = await start();
    await q.send("?delay=30");
    expect(await q.counts("jobs")).toMatchObject({ ready: 0, delayed: 1 });
    q.clock.advance(29_000);
    await q.drain();
    expect(await q.log()).toEqual([]);
    q.clock.advance(2_000); // due at +30 s, batch wait of 1 s ends at +31 s
    await q.drain();
    expect(await q.log()).toHaveLength(1);
  });

  it("retry → attempts grow with exponential backoff → dead-letter after max_retries", async () => {
    const q = await start();
    await q.send("?mode=retry");
    q.clock.advance(1_000);
    await q.drain();
    expect((await q.log()).map((e: { attempts: number }) => e.attempts)).toEqual([1]);
    expect(await q.counts("jobs")).toMatchObject({ delayed: 1 });
    q.clock.advance(10_000 + 1_000); // 10 s backoff after attempt 1, then the batch wait
    await q.drain();
    expect((await q.log()).map((e: { attempts: number }) => e.attempts)).toEqual([1, 2]);
    q.clock.advance(19_000); // 20 s after attempt 2: not yet
    await q.drain();
    expect(await q.log()).toHaveLength(2);
    q.clock.advance(2_000);
    await q.drain();
    expect((await q.log()).map((e: { attempts: number }) => e.attempts)).toEqual([1, 2, 3]);
    // attempt 3 = 1 + max_retries (2): dead-lettered, a copy in jobs-dlq
    expect(await q.counts("jobs")).toMatchObject({
      ready: 0,
      delayed: 0,
      inFlight: 0,
      deadLettered: 1,
    });
    expect(await q.counts("jobs-dlq")).toMatchObject({ ready: 1, deadLettered: 0 });
  });

  it("a throwing handler retries the whole batch", async () => {
    const q = await start();
    await q.send("?n=3&mode=throw");
    await q.drain();
    expect((await q.log()).map((e: { attempts: number }) => e.attempts)).toEqual([1, 1, 1]);
    expect(await q.counts("jobs")).toMatchObject({ delayed: 3 });
    expect(q.f.logger.entries.some((e) => String(e.msg).includes("consumer failed on purpose")))
      .toBe(true);
  });

  it("rejects a message over 128 KB with a clear error and stores nothing", async () => {
    const q = await start();
    const big = await q.f.fetch("/produce/big");
    expect(big.status).toBe(500);
    expect(await big.text()).toBe(
      'Queue "jobs": message body of 132096 bytes exceeds the limit of 131072 bytes (128 KB) per message',
    );
    expect(await q.counts("jobs")).toMatchObject({ ready: 0, delayed: 0, inFlight: 0 });
  });
});

describe("queue config", () => {
  const parse = (text: string) =>
    parseConfig(text, { path: "/srv/worky.toml", dir: "/srv", env: {}, fileExists: () => true });

  it("rejects a producer binding to a queue nobody consumes", () => {
    expect(() =>
      parse(
        `[tenants.a]\nmodule = "a.ts"\nroutes = ["a.localhost/*"]\nqueues = { JOBS = "jbos" }\n` +
          `[[tenants.a.queue_consumers]]\nqueue = "jobs"\n`,
      )
    ).toThrow(
      /tenants\.a\.queues\.JOBS: unknown queue "jbos": no tenant consumes it \(known queues: "jobs"/,
    );
  });

  it("rejects two consumers of one queue and bad consumer settings", () => {
    const text = `[tenants.a]\nmodule = "a.ts"\nroutes = ["a.localhost/*"]\n` +
      `[[tenants.a.queue_consumers]]\nqueue = "jobs"\nmax_batch_size = 500\n` +
      `[tenants.b]\nmodule = "b.ts"\nroutes = ["b.localhost/*"]\n` +
      `[[tenants.b.queue_consumers]]\nqueue = "jobs"\n`;
    expect(() => parse(text)).toThrow(/max_batch_size: must be an integer from 1 to 100, got 500/);
    expect(() => parse(text)).toThrow(/queue "jobs" is already consumed by tenants\.a/);
  });

  it("normalizes consumers and producers", () => {
    const t = parse(
      `[tenants.a]\nmodule = "a.ts"\nroutes = ["a.localhost/*"]\nqueues = { JOBS = "jobs" }\n` +
        `[[tenants.a.queue_consumers]]\nqueue = "jobs"\n`,
    ).tenants[0];
    expect(t.queues).toEqual({ JOBS: "jobs" });
    expect(t.queueConsumers).toEqual([{
      queue: "jobs",
      maxBatchSize: 10,
      maxBatchTimeoutMs: 1000,
      maxRetries: 3,
      retryDelaySeconds: 0,
      retryBackoff: "constant",
      deadLetterQueue: null,
    }]);
  });
});
