/**
 * `worky cron list | runs <tenant> | trigger <tenant> [cron]`: cron triggers,
 * their history, and firing one now. Reads and writes the database named by
 * the config (the same one the server uses); `trigger` hands the run to a
 * running Worky server through the timer table and waits for its record.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import type { WorkyConfig } from "../../control-plane/config/types.ts";
import { openDatabase, type WorkyDatabase } from "../../control-plane/storage/database.ts";
import { cronOf } from "../../control-plane/scheduler/cron_config.ts";
import {
  type CronRun,
  cronRunByRequestId,
  lastCronRun,
  listCronRuns,
} from "../../control-plane/scheduler/cron_runs.ts";
import {
  CRON_TIMER,
  CRON_TRIGGER_TIMER,
  cronKey,
  type ManualTriggerPayload,
} from "../../control-plane/scheduler/cron_scheduler.ts";
import { TimerService } from "../../control-plane/scheduler/timer_service.ts";
import { WorkyError } from "../../runtime/errors.ts";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) {
    throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  }
  return n;
}

async function withDb<T>(
  configPath: string,
  fn: (config: WorkyConfig, db: WorkyDatabase) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(configPath);
  const db = await openDatabase(config.server.dbUrl);
  try {
    return await fn(config, db);
  } finally {
    db.close();
  }
}

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

function formatRun(run: CronRun): string {
  const took = run.startedAt !== null && run.endedAt !== null
    ? ` ${run.endedAt - run.startedAt}ms`
    : "";
  const error = run.error ? `  ${run.error.split("\n")[0]}` : "";
  return `${iso(run.scheduledTime)}  ${run.outcome.padEnd(9)} ${run.trigger.padEnd(8)} ` +
    `${JSON.stringify(run.schedule)}${took}${error}`;
}

const listCommand = new Command("list")
  .description("show every cron trigger with its last and next run")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .action(async (opts) => {
    await withDb(opts.config, async (config, db) => {
      const timers = new TimerService({ client: db.client });
      let any = false;
      for (const tenant of config.tenants) {
        for (const trigger of tenant.cron) {
          any = true;
          const timer = await timers.get(CRON_TIMER, cronKey(tenant.name, trigger));
          const next = timer?.dueAt ?? cronOf(trigger).nextRun(new Date())?.getTime() ?? null;
          const last = await lastCronRun(
            db.client,
            tenant.name,
            trigger.schedule,
            trigger.timezone,
          );
          console.log(
            `${tenant.name}  ${JSON.stringify(trigger.schedule)} (${trigger.timezone}, ` +
              `catch_up=${trigger.catchUp})  last: ${
                last ? `${iso(last.scheduledTime)} ${last.outcome}` : "never"
              }  next: ${iso(next)}`,
          );
        }
      }
      if (!any) console.log("no cron triggers in the config");
    });
  });

const runsCommand = new Command("runs")
  .description("show the latest runs of a tenant's cron triggers, newest first")
  .argument("<tenant>", "the tenant")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .option("-n, --limit <count>", "how many runs", positiveInt, 20)
  .option("--logs", "print each run's log lines")
  .action(async (tenant, opts) => {
    await withDb(opts.config, async (config, db) => {
      if (!config.tenants.some((t) => t.name === tenant)) {
        throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${tenant}" in ${config.path}`);
      }
      const runs = await listCronRuns(db.client, tenant, { limit: opts.limit });
      if (!runs.length) console.log(`no cron runs of "${tenant}" yet`);
      for (const run of runs) {
        console.log(formatRun(run));
        if (opts.logs) { for (const l of run.logs) console.log(`    ${l.level}: ${l.msg}`); }
      }
    });
  });

const triggerCommand = new Command("trigger")
  .description("run a tenant's scheduled() now, on the running Worky server")
  .argument("<tenant>", "the tenant")
  .argument("[cron]", "which trigger (default: the tenant's first)")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .option("--wait <seconds>", "how long to wait for the run", positiveInt, 30)
  .action(async (tenant, schedule, opts) => {
    await withDb(opts.config, async (config, db) => {
      const t = config.tenants.find((x) => x.name === tenant);
      if (!t) {
        throw new WorkyError("ERR_NOT_FOUND", `no tenant named "${tenant}" in ${config.path}`);
      }
      if (schedule !== undefined && t.cron.length && !t.cron.some((c) => c.schedule === schedule)) {
        throw new WorkyError(
          "ERR_NOT_FOUND",
          `tenant "${tenant}" has no cron trigger ${JSON.stringify(schedule)} (it has ${
            t.cron.map((c) => JSON.stringify(c.schedule)).join(", ")
          })`,
        );
      }
      const requestId = `cron-${crypto.randomUUID()}`;
      const payload: ManualTriggerPayload = { tenant, schedule, requestId };
      const timers = new TimerService({ client: db.client });
      await timers.schedule(CRON_TRIGGER_TIMER, `${tenant}|${requestId}`, Date.now(), payload);
      const deadline = Date.now() + opts.wait * 1000;
      while (Date.now() < deadline) {
        const run = await cronRunByRequestId(db.client, requestId);
        if (run && run.outcome !== "running") {
          console.log(formatRun(run));
          for (const l of run.logs) console.log(`    ${l.level}: ${l.msg}`);
          if (run.outcome !== "ok") {
            throw new WorkyError("ERR_TENANT_EXCEPTION", `the run ended with "${run.outcome}"`);
          }
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await timers.cancel(CRON_TRIGGER_TIMER, `${tenant}|${requestId}`);
      throw new WorkyError(
        "ERR_UNAVAILABLE",
        `no Worky server ran the trigger within ${opts.wait} s: is one running against ` +
          `${config.server.dbUrl}?`,
      );
    });
  });

export const cronCommand = new Command("cron")
  .description("cron triggers: list, run history, fire one now")
  .addCommand(listCommand)
  .addCommand(runsCommand)
  .addCommand(triggerCommand)
  .addHelpText(
    "after",
    "\nExamples:\n  worky cron list\n  worky cron runs reports --logs\n" +
      '  worky cron trigger reports "0 9 * * *"',
  );
