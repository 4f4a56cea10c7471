/**
 * Cron triggers that come with an artifact's manifest join the tenant's own on
 * deploy, and leave again when a version without them is swapped in.
 */
import { afterEach, expect, test } from "vitest";
import { type Fixture, startFixture } from "../../_helpers/fixture.ts";
import { until } from "../../_helpers/fixture.ts";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

const MODULE = `export default {
  fetch: () => new Response("ok"),
  scheduled: (controller) => console.log("tick", controller.cron),
};`;

test("a swapped-in version's manifest crons are scheduled, and removed by the next swap", async () => {
  fx = await startFixture({
    "worky.toml": `[tenants.app]\nmodule = "app.ts"\nroutes = ["*/*"]\ncron = ["0 9 * * *"]\n`,
    "app.ts": MODULE,
  });
  const { deployments, scheduler } = fx.server;
  const schedules = async () => (await scheduler.cron.list()).map((t) => t.trigger.schedule).sort();
  expect(await schedules()).toEqual(["0 9 * * *"]);

  const code = { code: MODULE.replace("ok", "v2"), version: "acme/app@2.0.0", inputs: [] };
  const v2 = await deployments.start("app", { ...code, crons: ["*/5 * * * *", "0 9 * * *"] });
  deployments.swap("app", v2, { inputs: [], crons: ["*/5 * * * *", "0 9 * * *"] });
  await until(async () => (await schedules()).length === 2);
  expect(await schedules()).toEqual(["*/5 * * * *", "0 9 * * *"]);
  const added = (await scheduler.cron.list()).find((t) => t.trigger.schedule === "*/5 * * * *")!;
  expect(added.trigger).toEqual({ schedule: "*/5 * * * *", timezone: "UTC", catchUp: "skip" });
  expect(added.nextRun).toBeGreaterThan(Date.now() - 1000);

  const v3 = await deployments.start("app", { ...code, version: "acme/app@3.0.0", crons: [] });
  deployments.swap("app", v3, { inputs: [], crons: [] });
  await until(async () => (await schedules()).length === 1);
  expect(await schedules()).toEqual(["0 9 * * *"]);
  expect(await (await fx.fetch("/")).text()).toBe("v2");
});
