/**
 * Starting, reloading and state: hot reload picks up an edit while requests
 * in flight finish on the old code; a broken tenant stops the whole start;
 * KV through real HTTP with an injected clock; state survives a restart.
 */
import { afterEach, describe, expect, test } from "vitest";
import { type Fixture, startFixture, until, writeTree } from "../_helpers/fixture.ts";
import { ManualClock } from "../../runtime/clock.ts";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { startServer } from "../../control-plane/server.ts";
import { onCurrent } from "../../control-plane/deployments.ts";
import { MemoryLogger } from "../../runtime/logger.ts";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** `/slow` answers only when the client finishes sending its body. */
const slowTenant = (version: string) => `
  export default {
    async fetch(req: Request) {
      const path = new URL(req.url).pathname;
      if (path === "/slow") return new Response("${version} slow " + await req.text());
      return new Response("${version}");
    },
  };`;

describe("hot reload", () => {
  test("an edit is picked up without restart; in-flight requests finish on the old code", async () => {
    fx = await startFixture({
      "worky.toml": `[tenants.app]\nmodule = "app.ts"\nroutes = ["*/*"]\n`,
      "app.ts": slowTenant("v1"),
    }, { watch: true });
    expect(await (await fx.fetch("/")).text()).toBe("v1");
    let finishBody!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("body"));
        finishBody = () => c.close();
      },
    });
    // held open by the v1 code until we finish the body
    const inflight = fx.fetch("/slow", { method: "POST", body, duplex: "half" } as RequestInit);
    const before = fx.server.deployments.get("app")!.current;
    await until(() => before.stats().inFlight === 1);

    await Deno.writeTextFile(`${fx.dir}/app.ts`, slowTenant("v2"));
    await until(async () => (await (await fx!.fetch("/")).text()) === "v2");
    expect(fx.server.deployments.get("app")!.current).not.toBe(before);

    // the old deployment still serves its in-flight request to completion
    expect(before.stats().inFlight).toBe(1);
    finishBody();
    const res = await inflight;
    expect(await res.text()).toBe("v1 slow body");
    expect(fx.logger.entries.some((e) => e.msg.startsWith("reloaded after change"))).toBe(true);
  });

  test("a broken edit keeps the previous version serving and logs the error", async () => {
    fx = await startFixture({
      "worky.toml": `[tenants.app]\nmodule = "app.ts"\nroutes = ["*/*"]\n`,
      "app.ts": slowTenant("v1"),
    }, { watch: true });
    await Deno.writeTextFile(`${fx.dir}/app.ts`, "export default { fetch( { syntax error");
    await until(() => fx!.logger.entries.some((e) => e.msg.startsWith("reload failed")));
    const entry = fx.logger.entries.find((e) => e.msg.startsWith("reload failed"))!;
    expect(entry.msg).toContain("app.ts");
    expect(await (await fx.fetch("/")).text()).toBe("v1");
  });
});

describe("start is all or nothing", () => {
  test("a tenant whose module throws at load stops the start with its name; nothing listens", async () => {
    const dir = await writeTree({
      "worky.toml":
        `[tenants.good]\nmodule = "good.ts"\nroutes = ["good.localhost/*"]\n[tenants.bad]\nmodule = "bad.ts"\nroutes = ["bad.localhost/*"]\n[server]\nport = 0\n`,
      "good.ts": `export default { fetch: () => new Response("good") };`,
      "bad.ts": `throw new Error("cannot start: missing thing");\nexport default {};`,
    });
    const config = await loadConfig(`${dir}/worky.toml`, { env: {} });
    const err = await startServer({ config, logger: new MemoryLogger() }).catch((e) => e);
    expect(err.code).toBe("ERR_BUNDLE_INVALID");
    expect(err.message).toContain('tenant "bad" failed to start');
    expect(err.message).toContain("cannot start: missing thing");
  });

  test("a module that does not bundle names the file and line", async () => {
    const dir = await writeTree({
      "worky.toml": `[tenants.bad]\nmodule = "bad.ts"\nroutes = ["*/*"]\n`,
      "bad.ts":
        `import { nothing } from "./missing.ts";\nexport default { fetch: () => new Response(nothing) };`,
    });
    const config = await loadConfig(`${dir}/worky.toml`, { env: {} });
    const err = await startServer({ config, logger: new MemoryLogger(), port: 0 }).catch((e) => e);
    expect(err.code).toBe("ERR_BUNDLE_INVALID");
    expect(err.message).toMatch(/bad\.ts:1:\d+: Could not resolve "\.\/missing\.ts"/);
  });
});

const KV_TENANT = `
  export default {
    async fetch(req: Request, env: any) {
      const url = new URL(req.url);
      const key = url.searchParams.get("key") ?? "k";
      switch (url.pathname) {
        case "/put": {
          const ttl = url.searchParams.get("ttl");
          await env.STORE.put(key, await req.text(), ttl ? { expirationTtl: Number(ttl), metadata: { v: 1 } } : {});
          return new Response("stored");
        }
        case "/get": {
          const { value, metadata } = await env.STORE.getWithMetadata(key);
          return Response.json({ value, metadata });
        }
        case "/list": {
          const out = await env.STORE.list({ prefix: url.searchParams.get("prefix") ?? "", limit: 2, cursor: url.searchParams.get("cursor") ?? undefined });
          return Response.json(out);
        }
        case "/bad": {
          try { await env.STORE.put("x".repeat(513), "v"); return new Response("accepted?!"); }
          catch (e) { return new Response(String((e as Error).message), { status: 400 }); }
        }
      }
      return new Response("?", { status: 404 });
    },
  };`;

describe("KV through HTTP", () => {
  test("put/get/list with pagination, expiration by injected clock, tenant isolation, limits", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    fx = await startFixture({
      "worky.toml":
        `[tenants.a]\nmodule = "kv.ts"\nroutes = ["*/a/*"]\nkv = ["STORE"]\n[tenants.b]\nmodule = "kv.ts"\nroutes = ["*/b/*"]\nkv = ["STORE"]\n`,
      "kv.ts": KV_TENANT.replaceAll("url.pathname", "url.pathname.slice(2)"),
    }, { clock });
    const put = (t: string, key: string, body: string, ttl?: number) =>
      fx!.fetch(`/${t}/put?key=${key}${ttl ? `&ttl=${ttl}` : ""}`, { method: "POST", body }).then((
        r,
      ) => r.text());
    const get = (t: string, key: string) => fx!.fetch(`/${t}/get?key=${key}`).then((r) => r.json());

    expect(await put("a", "k1", "one")).toBe("stored");
    expect(await put("a", "k2", "two", 60)).toBe("stored");
    expect(await put("a", "k3", "three")).toBe("stored");
    expect(await get("a", "k2")).toEqual({ value: "two", metadata: { v: 1 } });
    // namespaces of different tenants never see each other
    expect(await get("b", "k1")).toEqual({ value: null, metadata: null });

    const page1 = await (await fx.fetch("/a/list?prefix=k")).json();
    expect(page1.keys.map((k: { name: string }) => k.name)).toEqual(["k1", "k2"]);
    expect(page1.list_complete).toBe(false);
    const page2 = await (await fx.fetch(`/a/list?prefix=k&cursor=${page1.cursor}`)).json();
    expect(page2.keys.map((k: { name: string }) => k.name)).toEqual(["k3"]);
    expect(page2.list_complete).toBe(true);

    clock.advance(61_000); // past the TTL: never returned again
    expect(await get("a", "k2")).toEqual({ value: null, metadata: null });
    const all = await (await fx.fetch("/a/list?prefix=k")).json();
    expect(all.keys.map((k: { name: string }) => k.name)).toEqual(["k1", "k3"]);

    const bad = await fx.fetch("/a/bad");
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/512/);
  });

  test("state survives a restart", async () => {
    const files = {
      "worky.toml": `[tenants.a]\nmodule = "kv.ts"\nroutes = ["*/*"]\nkv = ["STORE"]\n`,
      "kv.ts": KV_TENANT,
    };
    fx = await startFixture(files);
    const dir = fx.dir;
    await (await fx.fetch("/put?key=persist", { method: "POST", body: "kept" })).text();
    await fx.close();
    fx = await startFixture(files, { dir });
    expect(await (await fx.fetch("/get?key=persist")).json()).toEqual({
      value: "kept",
      metadata: null,
    });
  });
});

describe("an event refused by a deployment swapped out meanwhile", () => {
  test("runs once more on the slot's new deployment; refused by the current one, it fails", async () => {
    fx = await startFixture({
      "worky.toml": `[tenants.app]\nmodule = "app.ts"\nroutes = ["*/*"]\n`,
      "app.ts": `export default { fetch: () => new Response("served") };`,
    });
    const deployments = fx.server.deployments;
    const slot = deployments.get("app")!;
    const ask = (d: { fetch(r: Request, id: string): Promise<Response> }) =>
      d.fetch(new Request("http://localhost/"), "test-request");
    const seen: unknown[] = [];
    const res = await onCurrent(slot, async (d) => {
      seen.push(d);
      if (seen.length === 1) await deployments.redeploy("app"); // swapped: `d` drains, refuses
      return ask(d);
    });
    expect(await res.text()).toBe("served");
    expect(seen).toHaveLength(2);
    expect(seen[1]).toBe(slot.current);
    expect(seen[0]).not.toBe(seen[1]);
    // the current deployment refusing is not retried
    await slot.current.drain(0);
    let calls = 0;
    await expect(onCurrent(slot, (d) => (calls++, ask(d)))).rejects.toMatchObject({
      code: "ERR_UNAVAILABLE",
    });
    expect(calls).toBe(1);
  });
});
