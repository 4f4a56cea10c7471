/**
 * A tenant reads files outside its bundle: a host file, its own source, /etc/passwd, via Deno,
 * node:fs and `fetch` of a `file:` URL.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const secret = `${Deno.makeTempDirSync({ prefix: "worky-secret-" })}/secret.txt`;
Deno.writeTextFileSync(secret, "host secret");
const f = evilTenant(
  () => `
  const path = new URL(request.url).searchParams.get("p");
  if (new URL(request.url).pathname === "/node") return (await import("node:fs")).readFileSync(path, "utf8");
  if (new URL(request.url).pathname === "/fetch") return await (await fetch("file://" + path)).text();
  return await Deno.readTextFile(path);
`,
  "",
  { beforeAll, afterAll },
);

it("control: the host can read the file", () => {
  expect(Deno.readTextFileSync(secret)).toBe("host secret");
});

for (const [label, path] of [["a host file", secret], ["/etc/passwd", "/etc/passwd"]] as const) {
  for (
    const [api, how] of [["/", "Deno.readTextFile"], ["/node", "node:fs"], ["/fetch", "fetch"]]
  ) {
    attempt(`read ${label} with ${how}`, async () => {
      const { body } = await ask(f(), "evil", `${api}?p=${encodeURIComponent(path)}`);
      expect(body.ok).toBe(false);
      expect(String(body.message)).toMatch(
        /Requires read access|NotCapable|permission|not allowed/i,
      );
    });
  }
}

attempt("read its own module source (the bundle is not a file it may read)", async () => {
  const path = `${f().dir}/evil/mod.ts`;
  const { body } = await ask(f(), "evil", `/?p=${encodeURIComponent(path)}`);
  expect(body.ok).toBe(false);
  expect(String(body.message)).toMatch(/Requires read access/);
});
