/**
 * A supervised replacement keeps what the process it replaces learned: a tenant moved into a
 * cell (here by its first `Deno.exit`) starts in a cell in the replacement, while a new
 * `worky serve` (the operator starting Worky again) gives it another chance in-process.
 * Real supervisor, real server processes, a real zombie thread to trigger the handoff.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until, writeTree } from "../_helpers/fixture.ts";
import { startSupervised } from "../_helpers/worky_process.ts";
import { CELL_MOVES_FILE } from "../../control-plane/cells/cell_moves.ts";

let dir = "";
beforeAll(async () => {
  dir = await writeTree({
    "loop.ts": `export default { fetch() { while (true) {} } };`,
    "exit.ts": `export default { fetch() { Deno.exit(1); } };`,
    "good.ts": `export default { fetch: () => new Response("good") };`,
    "worky.toml": `[tenants.loop]\nmodule = "loop.ts"\nroutes = ["*/loop/*"]\n` +
      `[tenants.loop.limits]\ntimeout_ms = 300\n` +
      `[tenants.exit]\nmodule = "exit.ts"\nroutes = ["*/exit/*"]\n` +
      `[tenants.good]\nmodule = "good.ts"\nroutes = ["*/good/*"]\n`,
  });
});
afterAll(async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
});

type Health = { tenants: { tenant: string; isolation?: string }[] };
const isolationOf = async (url: string, tenant: string) => {
  const health = await (await fetch(`${url}/_worky/health`)).json() as Health;
  return health.tenants.find((t) => t.tenant === tenant)?.isolation ?? "thread";
};

/** Starts a supervised `worky serve`; resolves with its URL and log. */
async function serve() {
  const run = startSupervised(`${dir}/worky.toml`);
  const msgs = () => run.lines.map((l) => String(l.msg));
  await until(() => msgs().some((m) => /listening on http/.test(m)), 30_000);
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(msgs().find((m) => /listening/.test(m))!)![1];
  const stop = async () => {
    run.proc.kill("SIGTERM");
    await run.proc.status;
  };
  return { ...run, msgs, url, stop };
}

describe("moves into cells across a supervised handoff", () => {
  it("the replacement starts a moved tenant in a cell; a new start does not", async () => {
    const first = await serve();
    try {
      expect(await isolationOf(first.url, "exit")).toBe("thread");
      const exited = await fetch(`${first.url}/exit/`);
      expect(exited.status).toBeGreaterThanOrEqual(500);
      await exited.body?.cancel();
      await until(async () => (await isolationOf(first.url, "exit")) === "cell", 30_000);
      // recorded just after the swap
      const moves = () =>
        Deno.readTextFile(`${dir}/.worky/${CELL_MOVES_FILE}`).then(JSON.parse, () => undefined);
      await until(async () => (await moves())?.tenants?.exit !== undefined, 10_000);
      expect((await moves()).tenants.exit).toMatchObject({ misbehaved: true });

      // a zombie thread makes the server ask its supervisor for a replacement
      const looped = await fetch(`${first.url}/loop/`);
      expect(looped.status).toBe(504);
      await looped.body?.cancel();
      await until(() => first.msgs().some((m) => m.startsWith("supervisor: handoff done")), 60_000);

      // the replacement started it in a cell, without another Deno.exit
      expect(await isolationOf(first.url, "exit")).toBe("cell");
      expect(first.msgs()).toContainEqual(expect.stringMatching(
        /^tenant "exit" runs in a cell of its own: the process this one replaced moved it there/,
      ));
      const good = await fetch(`${first.url}/good/`);
      expect(`${good.status} ${await good.text()}`).toBe("200 good");
    } finally {
      await first.stop();
    }

    // the operator starts Worky again: a new supervisor run, exit gets another chance here
    const second = await serve();
    try {
      expect(await isolationOf(second.url, "exit")).toBe("thread");
      expect(await isolationOf(second.url, "loop")).toBe("cell"); // quarantine is for good
      expect(second.msgs().some((m) => m.includes("the process this one replaced moved it")))
        .toBe(false);
    } finally {
      await second.stop();
    }
  }, 150_000);
});
