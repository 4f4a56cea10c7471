/**
 * `ctx.storage` semantics through a real server: single and batch get/put/
 * delete, list order and ranges, deleteAll, transactions, sql.exec,
 * blockConcurrencyWhile.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../../_helpers/fixture.ts";
import { startDoFixture, storeCall } from "./_tenant.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await startDoFixture();
});
afterAll(async () => {
  await fx?.close();
});

const call = (name: string, method: string, ...args: unknown[]) =>
  storeCall(fx, name, method, ...args);

it("gets, puts and deletes single keys and batches", async () => {
  await call("s1", "put", "k", { deep: [1, 2, { x: "y" }] });
  expect(await call("s1", "get", "k")).toEqual({ deep: [1, 2, { x: "y" }] });
  expect(await call("s1", "get", "missing")).toBe(null);
  await call("s1", "putMany", { b: 2, a: 1, c: 3 });
  expect(await call("s1", "getMany", ["c", "a", "zz"])).toEqual([["a", 1], ["c", 3]]);
  expect(await call("s1", "del", "a")).toBe(true);
  expect(await call("s1", "del", "a")).toBe(false);
  expect(await call("s1", "delMany", ["b", "c", "nope"])).toBe(2);
  const tooMany = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, i]));
  await expect(call("s1", "putMany", tooMany)).rejects.toThrow(
    /at most 128 keys per call, got 129/,
  );
});

it("lists in key order with ranges, prefix, reverse and limit", async () => {
  const keys = ["b", "a", "ab", "abc", "b0", "c", "é", "Z"];
  await call("s2", "putMany", Object.fromEntries(keys.map((k) => [k, k.toUpperCase()])));
  const names = async (opts: unknown) =>
    ((await call("s2", "list", opts)) as [string, unknown][]).map(([k]) => k);
  // "boot" is written by the constructor (blockConcurrencyWhile)
  expect(await names({})).toEqual(["Z", "a", "ab", "abc", "b", "b0", "boot", "c", "é"]);
  expect(await names({ start: "ab", end: "b0" })).toEqual(["ab", "abc", "b"]);
  expect(await names({ startAfter: "ab", end: "b0" })).toEqual(["abc", "b"]);
  expect(await names({ prefix: "ab" })).toEqual(["ab", "abc"]);
  expect(await names({ reverse: true, limit: 3 })).toEqual(["é", "c", "boot"]);
  expect(await names({ prefix: "b", reverse: true })).toEqual(["boot", "b0", "b"]);
  expect(await names({ start: "a", limit: 2 })).toEqual(["a", "ab"]);
  const [[, value]] = (await call("s2", "list", { prefix: "é" })) as [string, unknown][];
  expect(value).toBe("É");
  await call("s2", "deleteAll");
  expect(await names({})).toEqual([]);
});

it("rolls a transaction back when its closure throws, commits otherwise", async () => {
  expect(await call("s3", "txnFail")).toEqual(["before", null]);
  expect(await call("s3", "txnOk")).toEqual([["a2", 2]]);
  expect(await call("s3", "get", "a2")).toBe(2);
  expect(await call("s3", "get", "a1")).toBe(null);
  expect(await call("s3", "txnRollback")).toBe(null);
});

it("runs SQL over the object's own database", async () => {
  const r = await call("s4", "sql") as Record<string, unknown>;
  expect(r.written).toBe(2);
  expect(r.all).toEqual([{ id: 1, name: "ada" }, { id: 2, name: "bob" }]);
  expect(r.one).toEqual({ n: 2 });
  expect(r.raw).toEqual([["ada"], ["bob"]]);
  expect(r.iter).toEqual(["bob"]);
  expect(r.blob).toEqual([1, 2]);
  expect(r.error).toMatch(/^sql\.exec\(\): .*syntax error/);
  expect(r.reserved).toMatch(/_cf_KV and other tables prefixed with _cf_ is not allowed/);
  expect(r.notOne).toBe("Expected exactly one result from SQL query, but got 2 results.");
  // another object has its own database
  const other = await call("s5", "sql") as Record<string, unknown>;
  expect(other.all).toEqual([{ id: 1, name: "ada" }, { id: 2, name: "bob" }]);
});

it("runs blockConcurrencyWhile before any event", async () => {
  const boots = await Promise.all(Array.from({ length: 10 }, () => call("s6", "boots")));
  expect(boots).toEqual(Array(10).fill(1));
});
