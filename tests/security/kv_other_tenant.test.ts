/**
 * A tenant reads another tenant's KV: same binding name, guessed keys, list
 * of everything. Each tenant's KV is its own namespace, chosen by the host.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    victim: {
      module: attackModule(
        `await env.STORE.put("card", "4111-secret"); return await env.STORE.get("card");`,
      ),
      toml: `kv = ["STORE"]\n`,
    },
    evil: {
      module: attackModule(`
        const listed = await env.STORE.list();
        return { card: await env.STORE.get("card"), keys: listed.keys.map((k) => k.name),
          traversal: await env.STORE.get("../victim/STORE/card") };
      `),
      toml: `kv = ["STORE"]\n`,
    },
  });
});
afterAll(() => f?.close());

it("control: the victim stored and reads its secret", async () => {
  expect((await ask(f, "victim")).body).toEqual({ ok: true, value: "4111-secret" });
});

attempt("read another tenant's KV through a binding of the same name", async () => {
  const { body } = await ask(f, "evil");
  expect(JSON.stringify(body)).not.toContain("4111-secret");
  expect(body).toEqual({ ok: true, value: { card: null, keys: [], traversal: null } });
});
