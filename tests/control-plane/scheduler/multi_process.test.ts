/**
 * Several Worky processes on one database file (real child processes):
 * each cron tick fires exactly once across them, and a consumer killed with
 * SIGKILL mid-batch loses nothing: its unacknowledged messages come back to
 * another process, and acknowledged ones are not delivered again.
 */
import { afterEach, describe, expect, it } from "vitest";
import { until, writeTree } from "../../_helpers/fixture.ts";
import { startWorkyChild, type WorkyProcess } from "../../_helpers/worky_process.ts";
import { type Database, openDatabase } from "../../../control-plane/storage/database.ts";
import { QueueService } from "../../../control-plane/queues/queue_service.ts";
import { TimerService } from "../../../control-plane/scheduler/timer_service.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";
import { systemClock } from "../../../runtime/clock.ts";

const children: WorkyProcess[] = [];
let db: Database | undefined;

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  db?.close();
  db = undefined;
});

/** A Worky process on the config's database; `owner` names it in timer leases. */
async function spawn(configPath: string, owner: string): Promise<WorkyProcess> {
  const child = await startWorkyChild(configPath, {
    spares: 0,
    scheduler: { owner, refreshMs: 100, leaseMs: 2_000, leaseMarginMs: 500 },
  });
  children.push(child);
  return child;
}

/** Stops the process: cleanly (SIGTERM) unless told otherwise. */
async function stop(child: WorkyProcess, signal: Deno.Signal = "SIGTERM"): Promise<void> {
  await child.stop(signal);
  children.splice(children.indexOf(child), 1);
}

async function kvKeys(namespace: string, prefix: string): Promise<string[]> {
  const rs = await db!.client.execute({
    sql: "SELECT key FROM kv_entries WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key",
    args: [namespace, prefix, prefix + "\uffff"],
  });
  return rs.rows.map((r) => String(r.key));
}

describe("two Worky processes, one database", () => {
  it("fire each cron tick exactly once", async () => {
    const dir = await writeTree({
      "mod.ts": `export default {
        fetch() { return new Response("ok"); },
        async scheduled(controller, env) {
          await env.K.put("tick:" + controller.scheduledTime + ":" + crypto.randomUUID(), "1");
        },
      };`,
      "worky.toml": `[tenants.ticker]\nmodule = "mod.ts"\nroutes = ["ticker.localhost/*"]\n` +
        `kv = ["K"]\ncron = ["* * * * * *"]\n`,
    });
    db = await openDatabase(`file:${dir}/.worky/worky.db`);
    const a = await spawn(`${dir}/worky.toml`, "proc-a");
    const b = await spawn(`${dir}/worky.toml`, "proc-b");
    await until(
      async () =>
        new Set((await kvKeys("ticker/K", "tick:")).map((k) => k.split(":")[1])).size >= 5,
      20_000,
    );
    await stop(a);
    await stop(b);
    const keys = await kvKeys("ticker/K", "tick:");
    const perTick = new Map<string, number>();
    for (const k of keys) perTick.set(k.split(":")[1], (perTick.get(k.split(":")[1]) ?? 0) + 1);
    expect(perTick.size).toBeGreaterThanOrEqual(5);
    expect([...perTick.values()].every((n) => n === 1)).toBe(true);
    // consecutive seconds: no tick was lost between the two processes
    const times = [...perTick.keys()].map(Number).sort((x, y) => x - y);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBe(1000);
    const runs = await db.client.execute(
      "SELECT scheduled_time, COUNT(*) AS n FROM cron_runs GROUP BY scheduled_time HAVING n > 1",
    );
    expect(runs.rows.length).toBe(0);
  });

  it("a consumer killed with SIGKILL mid-batch: unacknowledged messages come back, acknowledged ones do not", async () => {
    const dir = await writeTree({
      "consumer.ts": `export default {
        fetch() { return new Response("ok"); },
        async queue(batch, env) {
          for (const m of batch.messages) {
            await env.K.put("seen:" + m.body.n + ":" + m.attempts + ":" + crypto.randomUUID(), "1");
          }
          if (batch.messages.some((m) => m.body.hang && m.attempts === 1)) {
            await new Promise(() => {}); // stuck until the process is killed
          }
          for (const m of batch.messages) {
            await env.K.put("done:" + m.body.n + ":" + m.attempts + ":" + crypto.randomUUID(), "1");
            m.ack();
          }
        },
      };`,
      "worky.toml": `[tenants.consumer]\nmodule = "consumer.ts"\nroutes = ["c.localhost/*"]\n` +
        `kv = ["K"]\n[tenants.consumer.limits]\ntimeout_ms = 3000\n` +
        `[[tenants.consumer.queue_consumers]]\nqueue = "jobs"\nmax_batch_size = 5\n` +
        `max_batch_timeout_ms = 0\nmax_retries = 3\n`,
    });
    db = await openDatabase(`file:${dir}/.worky/worky.db`);
    // the producer side, in this process: stores messages and wakes the queue's timer
    const timers = new TimerService({ client: db.client, owner: "producer" });
    const queues = new QueueService({
      client: db.client,
      timers,
      clock: systemClock,
      logger: new MemoryLogger(),
    });
    const send = (n: number, hang: boolean) => ({
      body: new TextEncoder().encode(JSON.stringify({ n, hang })),
      contentType: "json" as const,
      delaySeconds: 0,
    });
    const a = await spawn(`${dir}/worky.toml`, "proc-a");
    await queues.send("jobs", Array.from({ length: 10 }, (_, n) => send(n, false)));
    await until(async () => (await kvKeys("consumer/K", "done:")).length === 10, 20_000);
    await queues.send("jobs", Array.from({ length: 5 }, (_, i) => send(10 + i, true)));
    await until(
      async () =>
        (await kvKeys("consumer/K", "seen:")).filter((k) => Number(k.split(":")[1]) >= 10)
          .length === 5,
      20_000,
    );
    await stop(a, "SIGKILL");

    await spawn(`${dir}/worky.toml`, "proc-b");
    await until(async () => (await kvKeys("consumer/K", "done:")).length === 15, 30_000);
    const done = (await kvKeys("consumer/K", "done:")).map((k) => k.split(":"));
    const byN = new Map<number, string[]>();
    for (const [, n, attempts] of done) {
      byN.set(Number(n), [...(byN.get(Number(n)) ?? []), attempts]);
    }
    // every message processed exactly once to completion
    expect([...byN.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    for (let n = 0; n < 10; n++) expect(byN.get(n)).toEqual(["1"]); // acknowledged: never again
    for (let n = 10; n < 15; n++) expect(byN.get(n)).toEqual(["2"]); // came back after the kill
    await until(async () => {
      const rs = await db!.client.execute("SELECT COUNT(*) AS n FROM queue_messages");
      return Number(rs.rows[0].n) === 0;
    });
  });
});
