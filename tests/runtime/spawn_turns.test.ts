/**
 * `new Worker()` blocks the host thread, so at most one spawn runs per turn of the event loop:
 * the factory says when the next turn is, and a burst of cold tenants takes turns (every one of
 * them still answers). Real workers, a real server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerFactory } from "../../runtime/worker_factory.ts";
import { toWorkerPermissions } from "../../runtime/permissions.ts";
import { type Fixture, startFixture, until } from "../_helpers/fixture.ts";
import type { Deployment } from "../../runtime/deployment.ts";

describe("WorkerFactory.spawnTurn", () => {
  it("lets one spawn run per turn, and says when the next turn is", async () => {
    const factory = new WorkerFactory({ spares: 0 });
    const perms = toWorkerPermissions({});
    try {
      expect(factory.spawnTurn(perms)).toBeUndefined(); // nothing spawned yet this turn
      const first = factory.take("a", perms);
      const wait = factory.spawnTurn(perms);
      expect(wait).toBeInstanceOf(Promise); // a second spawn now would block again
      first.terminate();
      await wait;
      expect(factory.spawnTurn(perms)).toBeUndefined(); // a new turn
    } finally {
      factory.close();
    }
  });
});

describe("a burst of cold tenants", () => {
  let fx: Fixture;
  const names = Array.from({ length: 6 }, (_, i) => `cold${i}`);
  beforeAll(async () => {
    fx = await startFixture({
      "t.ts": `export default { fetch: (req) => new Response(new URL(req.url).pathname) };`,
      "worky.toml": names.map((n) =>
        `[tenants.${n}]\nmodule = "t.ts"\nroutes = ["*/${n}/*"]\n[tenants.${n}.limits]\nidle_timeout_ms = 1000\n`
      ).join(""),
    });
  });
  afterAll(() => fx?.close());

  it("all answer, each from its own worker", async () => {
    const pool = (n: string) => (fx.server.deployments.get(n)!.current as Deployment).pool;
    await until(() => names.every((n) => pool(n).size === 0), 10_000); // scaled to zero: cold
    const answers = await Promise.all(names.map(async (n) => (await fx.fetch(`/${n}/x`)).text()));
    expect(answers).toEqual(names.map((n) => `/${n}/x`));
  });
});
