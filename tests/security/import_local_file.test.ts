/**
 * A tenant imports a local module outside its bundle: by absolute path, by
 * `file:` URL, and through a `data:` / `blob:` module that imports it
 * statically (a `blob:` URL can't even be made: `URL.createObjectURL` is refused). The module
 * would run host-side secrets into the tenant.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const dir = Deno.makeTempDirSync({ prefix: "worky-import-" });
const target = `${dir}/secret.js`;
Deno.writeTextFileSync(target, `export const secret = "host secret";`);
const url = new URL(`file://${target}`).href;

const f = evilTenant(
  `
  const q = new URL(request.url).searchParams;
  const how = q.get("how");
  const spec = q.get("spec");
  const dyn = (s) => import(s); // computed: the bundler leaves it alone
  if (how === "direct") return (await dyn(spec)).secret;
  const src = "export { secret } from " + JSON.stringify(spec) + ";";
  if (how === "data") return (await dyn("data:text/javascript," + encodeURIComponent(src))).secret;
  const blobUrl = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  return (await dyn(blobUrl)).secret;
`,
  "",
  { beforeAll, afterAll },
);

it("control: the host can import it", async () => {
  expect((await import(url)).secret).toBe("host secret");
});

for (const how of ["direct", "data", "blob"]) {
  for (const [label, spec] of [["path", target], ["file: URL", url]] as const) {
    attempt(`import() by ${label} (${how})`, async () => {
      const { body } = await ask(f(), "evil", `/?how=${how}&spec=${encodeURIComponent(spec)}`);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(body).not.toHaveProperty("value", "host secret");
      expect(String(body.message)).toMatch(
        /Requires read access|invalid URL|not allowed|Relative import path|Module not found|import|not available to Worky/i,
      );
    });
  }
}
