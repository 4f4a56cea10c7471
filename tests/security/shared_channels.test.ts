/**
 * Channels every worker of a process shares: BroadcastChannel, the Cache API (`caches`) and Web
 * Locks (`navigator.locks`). Tenants could talk to, read from or block each other through them.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, attackModule, evilTenant, tenantsFixture } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  if (how === "broadcast") { new BroadcastChannel("tenants").postMessage("hi"); return "sent"; }
  const c = await caches.open("shared");
  await c.put("https://x/", new Response("cached"));
  return "stored";
`,
  "",
  { beforeAll, afterAll },
);

for (const how of ["broadcast", "caches"]) {
  attempt(`a channel shared with other tenants: ${how}`, async () => {
    const { body } = await ask(f(), "evil", `/?how=${how}`);
    expect(body.ok).toBe(false);
    expect(String(body.message)).toMatch(/is not defined/);
  });
}

// Web Locks: Deno keeps one lock manager for the whole process
const locks = tenantsFixture({
  victim: {
    module: attackModule(`
      const how = new URL(request.url).searchParams.get("how");
      if (how === "hold") { // a lock it keeps, under a name of its own
        navigator.locks.request("victim-ledger", () => new Promise(() => {}));
        return "holding";
      }
      // a lock it needs, which the other tenant took first
      return await navigator.locks.request("orders", { ifAvailable: true }, (l) => l ? "got it" : "taken");
    `),
  },
  evil: {
    module: attackModule(`
      const how = new URL(request.url).searchParams.get("how");
      if (how === "take") {
        navigator.locks.request("orders", () => new Promise(() => {})); // never let go
        return "taken";
      }
      const { held, pending } = await navigator.locks.query();
      return [...held, ...pending].map((l) => l.name).join(",");
    `),
  },
}, { beforeAll, afterAll });

attempt("hold a Web Lock another tenant needs", async () => {
  expect((await ask(locks(), "evil", "/?how=take")).body).toEqual({ ok: true, value: "taken" });
  expect((await ask(locks(), "victim", "/?how=need")).body).toEqual({ ok: true, value: "got it" });
});

attempt("read another tenant's Web Lock names", async () => {
  expect((await ask(locks(), "victim", "/?how=hold")).body).toEqual({ ok: true, value: "holding" });
  const { body } = await ask(locks(), "evil", "/?how=query");
  expect(body.ok).toBe(true);
  expect(String(body.value)).not.toMatch(/victim-ledger/);
});
