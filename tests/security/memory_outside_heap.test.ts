/**
 * Memory outside V8's heap, which the heap sampler and a cell's heap cap don't see: WebAssembly
 * memories (`external_memory` stays 0, measured on Deno 2.9.6) and Blob bytes (held by Deno, not
 * V8). A tenant with `memory_mb = 48` grows one within a request, and keeps 64 MiB more per
 * request across requests (1.5 GiB asked for in all): in-process (the host's memory watchdog
 * charges the process's growth to the worker whose events it happened in) and in a cell (the
 * control plane caps the cell's RSS). Before those two rules it kept all of it.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, attackModule, tenantsFixture } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const ATTACK = attackModule(`
  const how = new URL(request.url).searchParams.get("how");
  const kept = (globalThis.kept ??= []);
  if (how === "wasm") { // 64 MiB more per request, kept between requests
    const m = new WebAssembly.Memory({ initial: 1024, maximum: 65536 });
    new Uint8Array(m.buffer).fill(1);
    kept.push(m);
    return kept.length * 64;
  }
  if (how === "blob-url") { // a blob: URL outlives its worker in Deno's process-wide store
    const { URL: NodeURL } = await import("node:url");
    const blob = new Blob([new Uint8Array(1024)]);
    const made = [];
    for (const U of [URL, NodeURL]) {
      try { made.push(U.createObjectURL(blob)); } catch (e) { if (!/not available to Worky/.test(e.message)) throw e; }
    }
    return made.length;
  }
  if (how === "blob") {
    kept.push(new Blob([new Uint8Array(64 * 1024 * 1024).fill(1)]));
    return kept.length * 64;
  }
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); // one growing memory
  for (let i = 0; i < 128; i++) { // 2 GiB at most
    const before = mem.buffer.byteLength;
    mem.grow(256); // 16 MiB
    new Uint8Array(mem.buffer).fill(1, before);
    await new Promise((r) => setTimeout(r, 5));
  }
  return "grew to " + mem.buffer.byteLength;
`);
const LIMITS = `memory_mb = 48\n`;

const f = tenantsFixture({
  grow: { module: ATTACK, toml: `[tenants.grow.limits]\n${LIMITS}` },
  wasm: { module: ATTACK, toml: `[tenants.wasm.limits]\n${LIMITS}` },
  blob: { module: ATTACK, toml: `[tenants.blob.limits]\n${LIMITS}` },
  cellwasm: { module: ATTACK, toml: `[tenants.cellwasm.limits]\n${LIMITS}isolation = "cell"\n` },
  good: { module: attackModule(`return "good";`) },
}, { beforeAll, afterAll });

attempt("grow a WebAssembly memory past the limit within one request", async () => {
  const { status, body } = await ask(f(), "grow");
  expect(status).toBe(503);
  expect((body.error as { code: string }).code).toBe("ERR_TENANT_MEMORY");
  expect((await ask(f(), "good")).body).toEqual({ ok: true, value: "good" });
}, 60_000);

attempt("keep memory past the worker's life in a blob: URL", async () => {
  const { status, body } = await ask(f(), "blob", "/?how=blob-url");
  expect(status).toBe(200);
  expect(body.value).toBe(0); // neither URL.createObjectURL made one
});

for (const [tenant, how] of [["wasm", "wasm"], ["blob", "blob"], ["cellwasm", "wasm"]]) {
  attempt(`keep ${how} memory between requests past the limit (${tenant})`, async () => {
    let most = 0;
    for (let i = 0; i < 24; i++) { // 64 MiB each: 1.5 GiB if nothing stopped it
      const { status, body } = await ask(f(), tenant, `/?how=${how}`);
      expect([200, 503]).toContain(status); // 503: stopped while it answered
      if (status === 200) most = Math.max(most, Number(body.value));
    }
    // stopped, its memory freed: in a cell at its cap (heap cap + 64 MiB); in-process once the
    // process passes its budget (every tenant's memory_mb + 128 MiB)
    expect(most).toBeLessThanOrEqual(768);
    expect(
      f().logger.entries.some((e) =>
        e.tenant === tenant && /memory/i.test(e.msg) &&
        /limits.memory_mb/.test(e.msg)
      ),
    ).toBe(true);
    expect((await ask(f(), "good")).body).toEqual({ ok: true, value: "good" });
  }, 60_000);
}
