/**
 * A tenant reads the host's environment: Deno.env, node:process env, and the host process's
 * command line (`Deno.args` and `process.argv` showed it in a worker, measured: an embedding
 * program's own arguments, which may carry what the operator passed it).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ask, attackModule, evilTenant, tenantsFixture } from "./_tenant.ts";
import { writeTree } from "../_helpers/fixture.ts";
import { serveWorky } from "../_helpers/worky_process.ts";
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

// in a real `worky serve` (its server process's command line names the config, the port…)
attempt("read the host's command line (Deno.args, process.argv)", async () => {
  const dir = await writeTree({
    "worky.toml": `[server]\ndata_dir = "state"\n[tenants.t]\nmodule = "t.ts"\nroutes = ["*/*"]\n`,
    "t.ts": `import process from "node:process";
      export default { fetch: () => Response.json([Deno.args, process.argv, process.execArgv]) };`,
  });
  const worky = await serveWorky(`${dir}/worky.toml`);
  try {
    const [args, argv, execArgv] = await (await fetch(`${worky.url}/`)).json();
    expect(args).toEqual([]);
    expect(execArgv).toEqual([]);
    expect(JSON.stringify(argv)).not.toMatch(/worky\.toml|serve|main\.ts/);
  } finally {
    await worky.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
}, 30_000);

// a tenant its operator granted `env = true` still never reads Worky's own variables
const granted = tenantsFixture({
  envy: {
    module: attackModule(`
      const how = new URL(request.url).searchParams.get("how");
      if (how === "path") return typeof Deno.env.get("PATH");
      const p = (await import("node:process")).default;
      return how === "node" ? p.env.WORKY_TEST_HOST_SECRET : Deno.env.get("WORKY_TEST_HOST_SECRET");
    `),
    toml: `[tenants.envy.permissions]\nenv = true\n`,
  },
}, { beforeAll, afterAll });

it("control: env = true reads the rest of the environment", async () => {
  expect((await ask(granted(), "envy", "/?how=path")).body).toEqual({ ok: true, value: "string" });
});

for (const how of ["deno", "node"]) {
  attempt(`env = true: read Worky's own variables (${how})`, async () => {
    const { body } = await ask(granted(), "envy", `/?how=${how}`);
    expect(JSON.stringify(body)).not.toContain("host-env-secret");
    expect(body.ok).toBe(false);
    expect(String(body.message)).toMatch(/Requires env access to "WORKY_TEST_HOST_SECRET"/);
  });
}
