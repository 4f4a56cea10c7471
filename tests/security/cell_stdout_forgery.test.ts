/**
 * A tenant in a cell shares the cell's process, whose stdout is the channel its log lines and its
 * "serving" line reach the control plane on (`Deno.stdout`, `fs.writeSync(1)`: the first is a log
 * sink in a tenant worker, the second fails with EBADF). It tries to forge both:
 * a ready line while its module is still loading (so requests would go to a socket nobody
 * listens on yet), and log lines in another tenant's name.
 */
import { afterAll, beforeAll, expect } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const FORGER = `
const enc = new TextEncoder();
const fs = await import("node:fs");
// a ready line (in the cell's own shape) while this module still loads for another second
await Deno.stdout.write(enc.encode(JSON.stringify({ level: "info", msg: "forged ready", cellReady: true }) + "\\n"));
await new Promise((r) => setTimeout(r, 1000));
export default {
  async fetch() {
    const line = JSON.stringify({ level: "error", msg: "forged line", tenant: "victim" }) + "\\n";
    await Deno.stdout.write(enc.encode(line));
    try { fs.writeSync(1, line); } catch { /* EBADF: the worker's stdio descriptors are closed */ }
    return Response.json({ ok: true, value: "served" });
  },
};`;

let f: Fixture;
beforeAll(async () => {
  f = await startTenants({
    forger: { module: FORGER, toml: `[tenants.forger.limits]\nisolation = "cell"\n` },
    victim: { module: `export default { fetch: () => new Response("victim") };` },
  });
}, 30_000);
afterAll(() => f?.close());

attempt("a cell's tenant forges the cell's ready line while its module still loads", async () => {
  // the server started only once the cell really served: its first request is answered
  const { status, body } = await ask(f, "forger");
  expect(status).toBe(200);
  expect(body).toEqual({ ok: true, value: "served" });
});

attempt(
  "a cell's tenant writes log lines in another tenant's name to the cell's stdout",
  async () => {
    await ask(f, "forger");
    const forged = f.logger.entries.filter((e) => String(e.msg).includes("forged line"));
    expect(forged.length).toBeGreaterThanOrEqual(1); // Deno.stdout's line arrived, as a log line
    expect(forged.every((e) => e.tenant === "forger")).toBe(true);
    expect(f.logger.entries.some((e) => e.tenant === "victim")).toBe(false);
  },
);
