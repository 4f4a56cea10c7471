/**
 * The history of cron runs (`cron_runs`): reading it for `worky cron runs`
 * and `worky cron list`. Writes happen in `cron_scheduler.ts`.
 *
 * @module
 */
import type { Client } from "@libsql/client";
import type { CapturedLine } from "./run_log_capture.ts";

/** One recorded run. */
export interface CronRun {
  id: number;
  tenant: string;
  schedule: string;
  timezone: string;
  /** `schedule`, `catch-up`, `manual` or `dev`. */
  trigger: string;
  scheduledTime: number;
  startedAt: number | null;
  endedAt: number | null;
  /** `running`, `ok`, `error`, `overrun`, `missed` or `abandoned`. */
  outcome: string;
  error: string | null;
  logs: CapturedLine[];
  requestId: string | null;
}

const COLUMNS = "id, tenant, schedule, timezone, trigger, scheduled_time, started_at, ended_at, " +
  "outcome, error, logs, request_id";

function toRun(r: Record<string, unknown>): CronRun {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(r.id),
    tenant: String(r.tenant),
    schedule: String(r.schedule),
    timezone: String(r.timezone),
    trigger: String(r.trigger),
    scheduledTime: Number(r.scheduled_time),
    startedAt: num(r.started_at),
    endedAt: num(r.ended_at),
    outcome: String(r.outcome),
    error: r.error === null ? null : String(r.error),
    logs: r.logs === null || r.logs === undefined ? [] : JSON.parse(String(r.logs)),
    requestId: r.request_id === null ? null : String(r.request_id),
  };
}

/**
 * The latest runs of a tenant (optionally of one schedule), newest first.
 *
 * @example
 * ```ts
 * import { openDatabase } from "../storage/database.ts";
 * import { listCronRuns } from "./cron_runs.ts";
 * const database = await openDatabase(":memory:");
 * console.log(await listCronRuns(database.client, "reports")); // []
 * database.close();
 * ```
 */
export async function listCronRuns(
  client: Client,
  tenant: string,
  options: { schedule?: string; limit?: number } = {},
): Promise<CronRun[]> {
  const rs = await client.execute({
    sql: `SELECT ${COLUMNS} FROM cron_runs WHERE tenant = ?` +
      (options.schedule === undefined ? "" : " AND schedule = ?") + " ORDER BY id DESC LIMIT ?",
    args: [
      tenant,
      ...(options.schedule === undefined ? [] : [options.schedule]),
      options.limit ?? 50,
    ],
  });
  return rs.rows.map(toRun);
}

/** The run with this request id, or null. */
export async function cronRunByRequestId(
  client: Client,
  requestId: string,
): Promise<CronRun | null> {
  const rs = await client.execute({
    sql: `SELECT ${COLUMNS} FROM cron_runs WHERE request_id = ? ORDER BY id DESC LIMIT 1`,
    args: [requestId],
  });
  return rs.rows.length ? toRun(rs.rows[0]) : null;
}

/** The latest run of one trigger, or null. */
export async function lastCronRun(
  client: Client,
  tenant: string,
  schedule: string,
  timezone: string,
): Promise<CronRun | null> {
  const rs = await client.execute({
    sql: `SELECT ${COLUMNS} FROM cron_runs WHERE tenant = ? AND schedule = ? AND timezone = ? ` +
      "ORDER BY id DESC LIMIT 1",
    args: [tenant, schedule, timezone],
  });
  return rs.rows.length ? toRun(rs.rows[0]) : null;
}
