/**
 * Starts a real Worky server with an "evil" tenant (and optionally others)
 * for the escape suite. Each tenant module is written to the fixture dir and
 * served on its own host name: `<name>.localhost`.
 */
import { type Fixture, rawRequest, startFixture } from "../_helpers/fixture.ts";

export interface TenantDef {
  /** The module source. */
  module: string;
  /** Extra TOML lines for `[tenants.<name>]` (permissions, limits, kv …). */
  toml?: string;
}

/** A fixture with tenants on `<name>.localhost/*`. */
export async function startTenants(tenants: Record<string, TenantDef>): Promise<Fixture> {
  const files: Record<string, string> = {};
  let toml = "";
  for (const [name, def] of Object.entries(tenants)) {
    files[`${name}/mod.ts`] = def.module;
    toml += `[tenants.${name}]\nmodule = "${name}/mod.ts"\nroutes = ["${name}.localhost/*"]\n${
      def.toml ?? ""
    }\n`;
  }
  files["worky.toml"] = toml;
  return await startFixture(files);
}

/** GET `path` on tenant `name`; parses the JSON body. */
export async function ask(
  f: Fixture,
  name: string,
  path = "/",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await rawRequest(f.url, `${name}.localhost`, path);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = { raw: res.body };
  }
  return { status: res.status, body };
}

/**
 * Module source: runs `attack` (a JS function body, async) and answers
 * `{ ok: true, value }` if it completed or `{ ok: false, name, message }` if it threw.
 */
export function attackModule(attack: string, prelude = ""): string {
  return `${prelude}
export default {
  async fetch(request, env, ctx) {
    try {
      const value = await (async () => { ${attack} })();
      return Response.json({ ok: true, value: value === undefined ? null : value });
    } catch (err) {
      return Response.json({ ok: false, name: err?.name, message: String(err?.message ?? err), code: err?.code ?? null });
    }
  },
};
`;
}

/** vitest's `beforeAll`/`afterAll`, passed in by the test file. */
export interface Hooks {
  beforeAll(fn: () => unknown, timeout?: number): void;
  afterAll(fn: () => unknown): void;
}

/**
 * A fixture for a test file with `tenants` (see startTenants): returns a getter for it and
 * registers its start and stop hooks.
 */
export function tenantsFixture(
  tenants: Record<string, TenantDef> | (() => Record<string, TenantDef>),
  hooks: Hooks,
): () => Fixture {
  let f: Fixture | undefined;
  hooks.beforeAll(async () => {
    f = await startTenants(typeof tenants === "function" ? tenants() : tenants);
  }, 30_000);
  hooks.afterAll(() => f?.close());
  return () => f!;
}

/**
 * One-tenant fixture for a test file: `evil` runs `attack` (see attackModule);
 * returns a getter for the fixture and registers start/stop hooks.
 */
export function evilTenant(
  attack: string | (() => string),
  toml = "",
  hooks: Hooks,
): () => Fixture {
  return tenantsFixture(() => ({
    evil: { module: attackModule(typeof attack === "string" ? attack : attack()), toml },
  }), hooks);
}
