/**
 * Channels every worker of a process shares: BroadcastChannel and the Cache
 * API (`caches`). Tenants could talk to or read from each other through them.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
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
