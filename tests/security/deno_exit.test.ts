/** A tenant ends the process: Deno.exit, node:process exit/abort/kill. The server keeps serving. */
import { afterAll, beforeAll, expect } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";
import { until } from "../_helpers/fixture.ts";

let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    evil: {
      module: attackModule(`
        const how = new URL(request.url).searchParams.get("how");
        const p = (await import("node:process")).default;
        if (how === "exit") Deno.exit(1);
        if (how === "process.exit") p.exit(1);
        if (how === "process.abort") p.abort();
        if (how === "process.kill") p.kill(p.pid, "SIGKILL");
        if (how === "later") { setTimeout(() => Deno.exit(3), 0); return "scheduled"; }
        return "alive";
      `),
    },
    good: { module: attackModule(`return "good";`) },
  });
});
afterAll(() => f?.close());

for (const how of ["exit", "process.exit", "process.abort", "process.kill", "later"]) {
  attempt(`${how} from a tenant`, async () => {
    await ask(f, "evil", `/?how=${how}`);
    // the process and the other tenant are fine, and the tenant itself comes back
    expect(Deno.permissions.querySync({ name: "read" }).state).toBe("granted");
    expect((await ask(f, "good")).body).toEqual({ ok: true, value: "good" });
    await until(async () => (await ask(f, "evil")).body.value === "alive");
    expect((await f.fetch("/_worky/health")).status).toBe(200);
  });
}
