/**
 * `worky queues`: per queue, messages ready, delayed, in flight and
 * dead-lettered, read from the database named by the config.
 */
import { Command } from "@commander-js/extra-typings";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { openDatabase } from "../../control-plane/storage/database.ts";
import { QueueStore } from "../../control-plane/queues/queue_store.ts";

export const queuesCommand = new Command("queues")
  .description("show each queue's depth, delayed, in-flight and dead-lettered messages")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .option("--json", "print JSON")
  .addHelpText("after", "\nExample:\n  worky queues --config worky.toml")
  .action(async (opts) => {
    const config = await loadConfig(opts.config);
    const db = await openDatabase(config.server.dbUrl);
    try {
      const consumers = new Map(
        config.tenants.flatMap((t) => t.queueConsumers.map((c) => [c.queue, t.name] as const)),
      );
      const names = [
        ...consumers.keys(),
        ...config.tenants.flatMap((t) => t.queueConsumers.flatMap((c) => c.deadLetterQueue ?? [])),
      ];
      const counts = await new QueueStore(db.client).counts(Date.now(), names);
      if (opts.json) {
        console.log(
          JSON.stringify(counts.map((c) => ({ ...c, consumer: consumers.get(c.queue) ?? null }))),
        );
        return;
      }
      if (!counts.length) {
        console.log("no queues");
        return;
      }
      console.log("queue                depth  delayed  in-flight  dead-lettered  consumer");
      for (const c of counts) {
        console.log(
          `${c.queue.padEnd(20)} ${String(c.ready).padStart(5)}  ${
            String(c.delayed).padStart(7)
          }  ` +
            `${String(c.inFlight).padStart(9)}  ${String(c.deadLettered).padStart(13)}  ` +
            `${consumers.get(c.queue) ?? "-"}`,
        );
      }
    } finally {
      db.close();
    }
  });
