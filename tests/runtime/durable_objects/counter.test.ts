/**
 * Durable Objects end to end through real HTTP: exactness of 100 concurrent
 * increments, RPC results and errors, stub.fetch, ids.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../../_helpers/fixture.ts";
import { startDoFixture } from "./_tenant.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await startDoFixture();
});
afterAll(async () => {
  await fx?.close();
});

it("counts exactly under 100 concurrent clients", async () => {
  const results = await Promise.all(
    Array.from({ length: 100 }, () => fx.fetch("/inc/exact").then((r) => r.json())),
  );
  expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  expect(await (await fx.fetch("/counter/exact?m=value")).json()).toBe(100);
  // the work was spread over several workers, but the object lives in one
  expect(fx.server.deployments.get("t")!.current.stats().workers).toBeGreaterThan(1);
});

it("resolves `worky` and `cloudflare:workers` to the same class", async () => {
  expect(await (await fx.fetch("/counter/x?m=sameBase")).json()).toBe(true);
});

it("passes structured-clone arguments and results", async () => {
  const args = encodeURIComponent(JSON.stringify([{ a: [1, "two", null], b: { c: true } }]));
  expect(await (await fx.fetch(`/counter/x?m=echo&args=${args}`)).json()).toEqual({
    a: [1, "two", null],
    b: { c: true },
  });
});

it("delivers errors thrown inside the object as errors with their message", async () => {
  const res = await fx.fetch("/boom/x");
  expect(await res.text()).toBe("true RangeError: kaput");
  // the object survives its exception
  expect((await fx.fetch("/inc/x")).status).toBe(200);
});

it("rejects non-cloneable arguments with a clear error", async () => {
  const res = await fx.fetch("/uncloneable/x");
  expect(res.status).toBe(400);
  const text = await res.text();
  expect(text).toMatch(/^TypeError: Counter\.echo\(\): the arguments cannot be sent/);
  expect(text).toMatch(/structured-cloneable/);
});

it("says so when a method does not exist", async () => {
  expect(await (await fx.fetch("/nomethod/x")).text()).toBe(
    'The RPC receiver does not implement the method "nope".',
  );
});

it("forwards stub.fetch to the object's fetch handler", async () => {
  expect(await (await fx.fetch("/fetch/x")).text()).toBe("201 counter POST /path/x hi");
});

it("makes deterministic, checked ids", async () => {
  const r = await (await fx.fetch("/ids")).json();
  expect(r.a).toMatch(/^[0-9a-f]{64}$/);
  expect(r.same).toBe(true);
  expect(r.name).toBe("x");
  expect(r.unique).toMatch(/^[0-9a-f]{64}$/);
  expect(r.parsedEquals).toBe(true);
  expect(r.differs).toBe(true);
  expect(r.errors[0]).toMatch(
    /^TypeError: Invalid Durable Object ID "nope": expected 64 lowercase hex/,
  );
  expect(r.errors[1]).toMatch(/^TypeError: Invalid Durable Object ID "g{64}"/);
  expect(r.errors[2]).toMatch(/is not an id of class "Counter"/);
  expect(r.info).toEqual({ id: r.a, name: "x" });
});
