/**
 * What a tenant can find on its globals: Deno internals, the bootstrap's
 * closures through eval, host secrets on globalThis, the original fetch.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

Deno.env.set("WORKY_GLOBAL_SECRET", "global-secret-value");
const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  if (how === "internals") {
    return [typeof Deno[Symbol.for("Deno.internal")], typeof Deno.core, typeof globalThis.__bootstrap,
      typeof Deno[Deno.internal], typeof globalThis.Deno?.[Symbol.for("Deno.core")]].join();
  }
  if (how === "eval") return eval("[typeof rpc, typeof post, typeof origFetch, typeof requestContext, typeof heap].join()");
  if (how === "function") return new Function("return [typeof rpc, typeof egress, typeof handlers].join()")();
  if (how === "globals") {
    const seen = [];
    for (const k of Reflect.ownKeys(globalThis)) { try { seen.push(String(k) + "=" + String(globalThis[k]).slice(0, 50)); } catch {} }
    return seen.join("\\n");
  }
  if (how === "fetch") return fetch.toString().includes("[native code]") ? "native" : "guarded";
`,
  "",
  { beforeAll, afterAll },
);

attempt("reach Deno internals", async () => {
  const { body } = await ask(f(), "evil", "/?how=internals");
  expect(body).toEqual({ ok: true, value: "undefined,undefined,undefined,undefined,undefined" });
});

for (const how of ["eval", "function"]) {
  attempt(`reach the bootstrap's closures through ${how}`, async () => {
    const { body } = await ask(f(), "evil", `/?how=${how}`);
    expect(body.ok).toBe(true);
    expect(String(body.value).split(",").every((t) => t === "undefined")).toBe(true);
  });
}

attempt("find host secrets on globalThis", async () => {
  const { body } = await ask(f(), "evil", "/?how=globals");
  expect(body.ok).toBe(true);
  expect(String(body.value)).not.toContain("global-secret-value");
  expect(String(body.value)).not.toMatch(/^(rpc|post|env)=/m);
});

attempt("get the unguarded fetch", async () => {
  const { body } = await ask(f(), "evil", "/?how=fetch");
  expect(body).toEqual({ ok: true, value: "guarded" });
});
