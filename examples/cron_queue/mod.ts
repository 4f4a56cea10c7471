/**
 * Cron + queue example. One tenant that is a producer, a consumer and has a
 * cron trigger (see the root worky.toml, tenant `jobs`):
 *
 * - `GET /jobs/send?task=resize` puts a message on the queue `jobs`;
 *   `?fail=1` makes the consumer retry it until it is dead-lettered.
 * - every minute, `scheduled()` queues a "tick" message.
 * - `queue()` processes batches and keeps the last 20 results in KV;
 *   `GET /jobs/` shows them. In dev, `GET /__scheduled?tenant=jobs` runs the cron now.
 */
import type {
  ExportedHandler,
  KVNamespace,
  MessageBatch,
  Queue,
  ScheduledController,
} from "../../mod.ts";

interface Job {
  task: string;
  fail?: boolean;
  at: string;
}

interface Env {
  JOBS: Queue<Job>;
  JOBS_LOG: KVNamespace;
}

async function remember(env: Env, line: string) {
  const log: string[] = JSON.parse(await env.JOBS_LOG.get("log") ?? "[]");
  log.unshift(line);
  await env.JOBS_LOG.put("log", JSON.stringify(log.slice(0, 20)));
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/send")) {
      const job: Job = {
        task: url.searchParams.get("task") ?? "hello",
        fail: url.searchParams.has("fail"),
        at: new Date().toISOString(),
      };
      await env.JOBS.send(job, { delaySeconds: Number(url.searchParams.get("delay") ?? 0) });
      return Response.json({ queued: job });
    }
    return Response.json({ processed: JSON.parse(await env.JOBS_LOG.get("log") ?? "[]") });
  },

  async scheduled(controller: ScheduledController, env: Env) {
    console.log(`cron ${controller.cron} at ${new Date(controller.scheduledTime).toISOString()}`);
    await env.JOBS.send({ task: "tick", at: new Date(controller.scheduledTime).toISOString() });
  },

  async queue(batch: MessageBatch<Job>, env: Env) {
    for (const msg of batch.messages) {
      if (msg.body.fail) {
        console.warn(`job ${msg.id} failed (attempt ${msg.attempts}), retrying`);
        msg.retry();
        continue;
      }
      await remember(env, `${msg.body.task} (queued ${msg.body.at}, attempt ${msg.attempts})`);
      msg.ack();
    }
  },
} satisfies ExportedHandler<Env>;
