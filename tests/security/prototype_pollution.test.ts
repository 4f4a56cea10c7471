/**
 * A tenant pollutes built-in prototypes (Object, Array, Function, Promise,
 * Response, JSON.parse): another tenant doesn't see it, and neither does the
 * same tenant's next request on a fresh worker.
 */
import { afterAll, beforeAll, expect } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";
import { until } from "../_helpers/fixture.ts";

const CHECK = `return {
  obj: ({}).polluted ?? null,
  arr: [].polluted ?? null,
  fn: (() => 0).polluted ?? null,
  promise: Promise.prototype.polluted ?? null,
  json: JSON.parse("{}").polluted ?? null,
  response: new Response("x").polluted ?? null,
};`;
const CLEAN = { obj: null, arr: null, fn: null, promise: null, json: null, response: null };

let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    evil: {
      module: attackModule(`
        const path = new URL(request.url).pathname;
        if (path === "/pollute") {
          Object.prototype.polluted = "yes";
          Array.prototype.polluted = "yes";
          Function.prototype.polluted = "yes";
          Promise.prototype.polluted = "yes";
          Response.prototype.polluted = "yes";
          const parse = JSON.parse;
          JSON.parse = (s) => ({ ...parse(s), polluted: "yes" });
          return "polluted";
        }
        if (path === "/crash") Deno.exit(1); // ends this worker: the next one is fresh
        ${CHECK}
      `),
    },
    victim: { module: attackModule(CHECK) },
  });
});
afterAll(() => f?.close());

attempt("pollute prototypes seen by another tenant", async () => {
  expect((await ask(f, "evil", "/pollute")).body).toEqual({ ok: true, value: "polluted" });
  expect((await ask(f, "evil", "/")).body.value).not.toEqual(CLEAN); // it did pollute its own
  expect((await ask(f, "victim")).body).toEqual({ ok: true, value: CLEAN });
});

attempt("pollution survives into a fresh worker of the same tenant", async () => {
  await ask(f, "evil", "/pollute");
  const before = f.server.deployments.route("evil.localhost", "/")!.current.stats().recycled;
  await ask(f, "evil", "/crash"); // Deno.exit: the worker is replaced
  await until(() =>
    f.server.deployments.route("evil.localhost", "/")!.current.stats().recycled > before
  );
  expect((await ask(f, "evil", "/")).body).toEqual({ ok: true, value: CLEAN });
});
