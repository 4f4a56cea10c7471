/**
 * The `cron` key of a tenant: its cron triggers, validated with croner at
 * config load.
 *
 * ```toml
 * [tenants.reports]
 * cron = [
 *   "*\/5 * * * *",                                   # every 5 minutes, UTC
 *   { schedule = "0 9 * * *", timezone = "Europe/Berlin", catch_up = "once" },
 *   "*\/10 * * * * *",                                # 6 fields: seconds first
 * ]
 * ```
 *
 * - `schedule`: 5 fields (minute hour day month weekday) or 6 (seconds first).
 * - `timezone`: an IANA zone; default `"UTC"`.
 * - `catch_up`: what happens to runs missed while no Worky process was up:
 *   `"skip"` (default) records them as missed and waits for the next one;
 *   `"once"` runs once, right away, to catch up.
 *
 * @module
 */
import { Cron } from "croner";
import { z } from "zod";

/** What to do with runs missed during downtime. */
export type CatchUpPolicy = "skip" | "once";

/** One normalized cron trigger of a tenant. */
export interface CronTriggerConfig {
  /** The expression as written, e.g. `"*\/5 * * * *"`. */
  schedule: string;
  /** IANA time zone the expression is read in; default `"UTC"`. */
  timezone: string;
  /** Missed runs after downtime: skipped (default) or one catch-up run. */
  catchUp: CatchUpPolicy;
}

/**
 * A croner job (never started: only used to compute times) for a trigger.
 * Throws croner's error for a bad expression or time zone.
 *
 * @example
 * ```ts
 * import { cronOf } from "./cron_config.ts";
 * const cron = cronOf({ schedule: "0 9 * * *", timezone: "Europe/Berlin" });
 * console.log(cron.nextRun(new Date("2026-03-29T00:00:00Z"))?.toISOString());
 * // "2026-03-29T07:00:00.000Z" (CEST, UTC+2)
 * ```
 */
export function cronOf(trigger: Pick<CronTriggerConfig, "schedule" | "timezone">): Cron {
  return new Cron(trigger.schedule, {
    timezone: trigger.timezone,
    mode: "5-or-6-parts",
    paused: true,
  });
}

/** Why `schedule` (in `timezone`) is not usable, or null when it is. */
function cronProblem(schedule: string, timezone: string): string | null {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    return `${
      JSON.stringify(timezone)
    } is not a known time zone (use an IANA name like "Europe/Berlin")`;
  }
  try {
    const job = cronOf({ schedule, timezone });
    if (job.nextRun(new Date(0)) === null) {
      return `${JSON.stringify(schedule)} never fires`;
    }
  } catch (err) {
    return `${JSON.stringify(schedule)} is not a valid cron expression: ${
      (err as Error).message
    } (expected 5 fields "min hour day month weekday", or 6 with seconds first)`;
  }
  return null;
}

const triggerTable = z.strictObject({
  schedule: z.string(),
  timezone: z.string().default("UTC"),
  catch_up: z.enum(["skip", "once"], {
    error: (iss) => `must be "skip" or "once", got ${JSON.stringify(iss.input)}`,
  }).default("skip"),
}, {
  error: (iss) =>
    iss.code === "invalid_type" && iss.input !== undefined
      ? `expected a cron expression or { schedule = "…", timezone = "…" }`
      : undefined,
});

/** One trigger: a string or `{ schedule, timezone?, catch_up? }`, normalized. */
const trigger = z.preprocess(
  (value) => typeof value === "string" ? { schedule: value } : value,
  triggerTable,
).transform((value, ctx): CronTriggerConfig => {
  const t = { schedule: value.schedule, timezone: value.timezone, catchUp: value.catch_up };
  const problem = cronProblem(t.schedule, t.timezone);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
  return t;
});

/**
 * `cron = [...]` of a tenant. The same schedule and zone twice is an error.
 *
 * @example
 * ```ts
 * import { cronSchema } from "./cron_config.ts";
 * console.log(cronSchema.parse(["0 * * * *"])[0].timezone); // "UTC"
 * ```
 */
export const cronSchema = z.array(trigger).default([]).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((t, i) => {
    const id = `${t.schedule}\u0000${t.timezone}`;
    if (seen.has(id)) {
      ctx.addIssue({
        code: "custom",
        path: [i],
        message: `${JSON.stringify(t.schedule)} (${t.timezone}) is listed twice`,
      });
    }
    seen.add(id);
  });
});
