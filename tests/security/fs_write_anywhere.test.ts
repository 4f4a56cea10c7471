/** A tenant writes files: in a temp dir, in the fixture dir, via node:fs. Nothing is created. */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const dir = Deno.makeTempDirSync({ prefix: "worky-write-" });
const f = evilTenant(
  `
  const q = new URL(request.url).searchParams;
  if (q.get("api") === "node") (await import("node:fs")).writeFileSync(q.get("p"), "pwned");
  else if (q.get("api") === "mkdir") await Deno.mkdir(q.get("p"));
  else await Deno.writeTextFile(q.get("p"), "pwned");
`,
  "",
  { beforeAll, afterAll },
);

for (const api of ["deno", "node", "mkdir"]) {
  for (const where of ["tmp", "fixture"]) {
    attempt(`write with ${api} into the ${where} dir`, async () => {
      const path = `${where === "tmp" ? dir : f().dir}/pwned-${api}`;
      const { body } = await ask(f(), "evil", `/?api=${api}&p=${encodeURIComponent(path)}`);
      expect(body.ok).toBe(false);
      expect(String(body.message)).toMatch(/Requires write access/);
      expect(() => Deno.statSync(path)).toThrow(Deno.errors.NotFound);
    });
  }
}
