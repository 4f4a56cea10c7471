/**
 * A tenant its operator granted `sys = true` reaches for the two `sys` powers that act on the
 * whole process (measured from a worker on Deno 2.9.6): `node:inspector` (the process's debugger,
 * every isolate's, and a session on its own isolate that reads the closures behind Worky's
 * guards) and `os.setPriority` (renices any thread: the host's main thread too). The other `sys`
 * names still work.
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { ask, attackModule, tenantsFixture } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const f = tenantsFixture({
  sys: {
    module: attackModule(`
      const how = new URL(request.url).searchParams.get("how");
      if (how === "hostname") return typeof Deno.hostname();
      if (how === "session") { // its own isolate's debugger: a closure's [[Scopes]] are readable
        const inspector = await import("node:inspector");
        const s = new inspector.Session();
        s.connect();
        return await new Promise((ok, fail) =>
          s.post("Runtime.evaluate", { expression: "1 + 1" }, (e, r) => e ? fail(e) : ok(r.result.value)));
      }
      if (how === "open") { // the process's debugger, on a port
        const inspector = await import("node:inspector");
        inspector.open(0, "127.0.0.1");
        return inspector.url() ?? "opened";
      }
      if (how === "setPriority") {
        const os = await import("node:os");
        os.setPriority(Deno.pid, 19); // the host's main thread
        return "reniced";
      }
    `),
    toml: `[tenants.sys.permissions]\nsys = true\nnet = true\n`,
  },
}, { beforeAll, afterAll });

test("control: the other sys names still work", async () => {
  expect((await ask(f(), "sys", "/?how=hostname")).body).toEqual({ ok: true, value: "string" });
});

for (const how of ["session", "open", "setPriority"]) {
  attempt(
    `sys = true: ${how === "setPriority" ? "renice the host" : `node:inspector ${how}`}`,
    async () => {
      const { body } = await ask(f(), "sys", `/?how=${how}`);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(String(body.message)).toMatch(/Requires sys access to "(inspector|setPriority)"/);
    },
  );
}
