/**
 * The fixed fuzz corpus (same seeds every run): mutated worky.toml texts,
 * route patterns and garbage HTTP requests each get a clear error, nothing
 * crashes, and a tenant's stored data survives. `deno task fuzz` runs the
 * same generators over ≥100,000 inputs.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Fixture, rawRequest } from "../_helpers/fixture.ts";
import { fuzzConfig, fuzzHandler, fuzzRoutes, fuzzSocket, startFuzzTarget } from "./fuzz_run.ts";

let f: Fixture;
beforeAll(async () => {
  f = await startFuzzTarget();
});
afterAll(() => f?.close());

it("mutated worky.toml texts get ERR_CONFIG_INVALID or parse", () => {
  const report = fuzzConfig(1, 2000);
  expect(report.findings).toEqual([]);
});

it("random route patterns get ERR_CONFIG_INVALID or parse", () => {
  expect(fuzzRoutes(2, 2000).findings).toEqual([]);
});

it("garbage requests through the handler get answers; stored data survives", async () => {
  const report = await fuzzHandler(f.server, 3, 300);
  expect(report.inputs).toBeGreaterThan(200);
  expect(report.findings).toEqual([]);
  expect((await rawRequest(f.url, "x", "/")).body).toBe("kept");
});

it("malformed raw HTTP over sockets never breaks the server", async () => {
  const report = await fuzzSocket(f.server, "x", 4, 200, 4);
  expect(report.findings).toEqual([]);
  expect((await rawRequest(f.url, "x", "/")).body).toBe("kept");
});
