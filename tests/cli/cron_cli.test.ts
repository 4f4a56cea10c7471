/**
 * `worky cron …` and `worky queues` as real CLI processes against the
 * database of a real running server.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, startFixture } from "../_helpers/fixture.ts";
import { runCli } from "../_helpers/run_cli.ts";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const FILES = {
  "mod.ts": `export default {
    async fetch(req, env) { await env.JOBS.send({ hi: 1 }, { delaySeconds: 600 }); return new Response("sent"); },
    scheduled(controller) { console.log("ran", controller.cron); },
    queue() {},
  };`,
  "worky.toml": `[tenants.reports]\nmodule = "mod.ts"\nroutes = ["*/reports/*"]\n` +
    `cron = ["0 0 1 1 *", { schedule = "0 9 * * *", timezone = "Europe/Berlin" }]\n` +
    `queues = { JOBS = "jobs" }\n[[tenants.reports.queue_consumers]]\nqueue = "jobs"\n` +
    `dead_letter_queue = "jobs-dlq"\n`,
};

describe("worky cron / worky queues", () => {
  it("trigger runs scheduled() on the running server; runs and list show it", async () => {
    fx = await startFixture(FILES);
    const config = `${fx.dir}/worky.toml`;
    const trig = await runCli(["cron", "trigger", "reports", "0 9 * * *", "--config", config]);
    expect(trig.stderr).toBe("");
    expect(trig.code).toBe(0);
    expect(trig.stdout).toMatch(/ok\s+manual\s+"0 9 \* \* \*"/);
    expect(trig.stdout).toContain("info: ran 0 9 * * *");

    const runs = await runCli(["cron", "runs", "reports", "--logs", "--config", config]);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toContain("ran 0 9 * * *");

    const list = await runCli(["cron", "list", "--config", config]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      /reports {2}"0 9 \* \* \*" \(Europe\/Berlin, catch_up=skip\) {2}last: \S+ ok {2}next: \S+/,
    );
    expect(list.stdout).toMatch(
      /"0 0 1 1 \*" \(UTC, catch_up=skip\) {2}last: never {2}next: \d{4}-01-01T00:00:00\.000Z/,
    );

    const bad = await runCli(["cron", "trigger", "reports", "1 2 3 4 5", "--config", config]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('tenant "reports" has no cron trigger "1 2 3 4 5"');

    expect(await (await fx.fetch("/reports/send")).text()).toBe("sent");
    const queues = await runCli(["queues", "--json", "--config", config]);
    expect(queues.code).toBe(0);
    expect(JSON.parse(queues.stdout)).toEqual([
      { queue: "jobs", ready: 0, delayed: 1, inFlight: 0, deadLettered: 0, consumer: "reports" },
      { queue: "jobs-dlq", ready: 0, delayed: 0, inFlight: 0, deadLettered: 0, consumer: null },
    ]);
  });
});
