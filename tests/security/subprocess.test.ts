/** A tenant runs a subprocess: Deno.Command, node:child_process. */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const marker = `${Deno.makeTempDirSync({ prefix: "worky-run-" })}/ran`;
const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  const cmd = "touch ${marker}";
  if (how === "deno") return (await new Deno.Command("sh", { args: ["-c", cmd] }).output()).code;
  if (how === "execpath") return (await new Deno.Command(Deno.execPath(), { args: ["eval", "1"] }).output()).code;
  const cp = await import("node:child_process");
  if (how === "spawn") return await new Promise((res, rej) => cp.spawn("sh", ["-c", cmd]).on("exit", res).on("error", rej));
  return cp.execSync(cmd).toString();
`,
  "",
  { beforeAll, afterAll },
);

for (const how of ["deno", "execpath", "spawn", "execSync"]) {
  attempt(`run a subprocess (${how})`, async () => {
    const { body } = await ask(f(), "evil", `/?how=${how}`);
    expect(body.ok).toBe(false);
    expect(String(body.message)).toMatch(/Requires (run|read|sys|env) access/);
    expect(() => Deno.statSync(marker)).toThrow(Deno.errors.NotFound);
  });
}
