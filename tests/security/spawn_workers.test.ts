/** A tenant spawns workers of its own: Worker (removed), node:worker_threads. */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  if (how === "typeof") return typeof Worker + "/" + typeof globalThis.Worker + "/" + typeof self.Worker;
  if (how === "web") return typeof new Worker("data:text/javascript,1", { type: "module" });
  const wt = await import("node:worker_threads");
  const w = new wt.Worker("1", { eval: true });
  return await new Promise((res, rej) => { w.on("online", () => res("online")); w.on("error", rej); });
`,
  "",
  { beforeAll, afterAll },
);

attempt("Worker is removed from the tenant's globals", async () => {
  const { body } = await ask(f(), "evil", "/?how=typeof");
  expect(body).toEqual({ ok: true, value: "undefined/undefined/undefined" });
});

attempt("new Worker(...)", async () => {
  const { body } = await ask(f(), "evil", "/?how=web");
  expect(body.ok).toBe(false);
  expect(String(body.message)).toMatch(/Worker is not defined/);
});

attempt("node:worker_threads Worker", async () => {
  const { body } = await ask(f(), "evil", "/?how=node");
  expect(body.ok).toBe(false);
  expect(String(body.message)).toMatch(/not available|Requires|permission/i);
});
