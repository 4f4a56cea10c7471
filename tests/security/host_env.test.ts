/** A tenant reads the host's environment: Deno.env, node:process env. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

Deno.env.set("WORKY_TEST_HOST_SECRET", "host-env-secret");
const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  if (how === "get") return Deno.env.get("WORKY_TEST_HOST_SECRET");
  if (how === "all") return Deno.env.toObject();
  const p = (await import("node:process")).default;
  return p.env.WORKY_TEST_HOST_SECRET ?? JSON.stringify(Object.keys(p.env));
`,
  "",
  { beforeAll, afterAll },
);

it("control: the host has the variable", () => {
  expect(Deno.env.get("WORKY_TEST_HOST_SECRET")).toBe("host-env-secret");
});

for (const how of ["get", "all", "node"]) {
  attempt(`read host env (${how})`, async () => {
    const { body } = await ask(f(), "evil", `/?how=${how}`);
    expect(JSON.stringify(body)).not.toContain("host-env-secret");
    expect(body.ok).toBe(false);
    expect(String(body.message)).toMatch(/Requires env access/);
  });
}
