/**
 * A tenant allocates without bound (in steps, as request handlers do): its
 * worker is stopped near `limits.memory_mb`, its request gets a 503 JSON
 * error, the other tenant keeps answering, and the tenant comes back on a
 * fresh worker.
 */
import { afterAll, beforeAll, expect } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    hog: {
      module: attackModule(`
        if (new URL(request.url).pathname === "/ok") return "fine";
        const keep = [];
        for (let i = 0; i < 300; i++) { // 600 MB at most: the limit must stop it far earlier
          keep.push(new Array(256 * 1024).fill(i + 0.5)); // ~2 MB of heap
          await new Promise((r) => setTimeout(r, 2));
        }
        return "allocated " + keep.length;
      `),
      toml: `[tenants.hog.limits]\nmemory_mb = 48\n`,
    },
    good: { module: attackModule(`return "good";`) },
  });
});
afterAll(() => f?.close());

attempt("allocate memory without bound", async () => {
  const { status, body } = await ask(f, "hog");
  expect(status).toBe(503);
  const error = body.error as { code: string; message: string };
  expect(error.code).toBe("ERR_TENANT_MEMORY");
  expect(error.message).toMatch(/over its limit of 48 MiB \(limits.memory_mb\)/);
  expect((await ask(f, "good")).body).toEqual({ ok: true, value: "good" });
  // the tenant itself comes back (in a cell of its own: isolation = "auto" moves it on a memory
  // kill; its requests meanwhile wait for the cell)
  expect((await ask(f, "hog", "/ok")).body).toEqual({ ok: true, value: "fine" });
}, 60_000);
