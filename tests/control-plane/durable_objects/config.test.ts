/** `durable_objects` in worky.toml: validated names, and a clear deploy error for a missing class. */
import { expect, it } from "vitest";
import { startFixture, writeTree } from "../../_helpers/fixture.ts";
import { loadConfig } from "../../../control-plane/config/load_config.ts";

const MODULE = `
import { DurableObject } from "worky";
export class Counter extends DurableObject {}
export default { fetch() { return new Response("ok"); } };
`;

it("fails the deploy when the module does not export the bound class", async () => {
  const err = await startFixture({
    "mod.js": MODULE,
    "worky.toml": `[tenants.t]\nmodule = "mod.js"\nroutes = ["*/*"]\n` +
      `durable_objects = { ROOMS = "ChatRoom" }\n`,
  }).then(() => null, (e) => e);
  expect(err?.message).toMatch(
    /env\.ROOMS: durable_objects binds class "ChatRoom", but the module exports no class by that name \(exported: Counter\)/,
  );
});

it("rejects class names that are not identifiers, with the line", async () => {
  const dir = await writeTree({
    "mod.js": MODULE,
    "worky.toml": `[tenants.t]\nmodule = "mod.js"\nroutes = ["*/*"]\n` +
      `durable_objects = { ROOMS = "../x" }\n`,
  });
  await expect(loadConfig(`${dir}/worky.toml`, { env: {} })).rejects.toThrow(
    /worky\.toml:4: tenants\.t\.durable_objects\.ROOMS: "\.\.\/x" is not a class name/,
  );
});

it("rejects a binding name used by both kv and durable_objects", async () => {
  const dir = await writeTree({
    "mod.js": MODULE,
    "worky.toml": `[tenants.t]\nmodule = "mod.js"\nroutes = ["*/*"]\nkv = ["C"]\n` +
      `durable_objects = { C = "Counter" }\n`,
  });
  await expect(loadConfig(`${dir}/worky.toml`, { env: {} })).rejects.toThrow(
    /worky\.toml:5: tenants\.t\.durable_objects\.C: binding name "C" is already used by kv\[0\]/,
  );
});
