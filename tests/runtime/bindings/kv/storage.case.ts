/**
 * The `KvStorage` contract, as one suite every implementation runs
 * (`runKvStorageContract("libsql", open)` from the implementation's test).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KvStorage } from "../../../../runtime/bindings/kv/storage.ts";
import { WorkyError } from "../../../../runtime/errors.ts";

/** A fresh, empty storage and how to dispose of it. */
export interface KvStorageHarness {
  storage: KvStorage;
  close(): Promise<void> | void;
}

const NOW = 1_700_000_000_000;
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => new TextDecoder().decode(value);
const none = { expiration: null, metadata: null };

/** Runs the KvStorage contract against storages made by `open`. */
export function runKvStorageContract(name: string, open: () => Promise<KvStorageHarness>): void {
  describe(`KvStorage contract: ${name}`, () => {
    let harness: KvStorageHarness;
    let kv: KvStorage;

    beforeEach(async () => {
      harness = await open();
      kv = harness.storage;
    });
    afterEach(async () => {
      await harness.close();
    });

    it("returns null for a missing key", async () => {
      expect(await kv.get("ns", "missing", NOW)).toBeNull();
    });

    it("round-trips binary values byte for byte", async () => {
      const value = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
      await kv.put("ns", "bin", value, none);
      const entry = await kv.get("ns", "bin", NOW);
      expect(entry).not.toBeNull();
      expect(entry!.value).toBeInstanceOf(Uint8Array);
      expect([...entry!.value]).toEqual([...value]);
      expect(entry!.metadata).toBeNull();
      expect(entry!.expiration).toBeNull();
    });

    it("stores an empty value", async () => {
      await kv.put("ns", "empty", new Uint8Array(0), none);
      const entry = await kv.get("ns", "empty", NOW);
      expect(entry?.value.byteLength).toBe(0);
    });

    it("round-trips metadata of every JSON shape", async () => {
      const shapes: unknown[] = [{ a: 1, nested: { b: [true, null, "x"] } }, "text", 42, [1, 2]];
      for (const [i, metadata] of shapes.entries()) {
        await kv.put("ns", `m${i}`, bytes("v"), { expiration: null, metadata });
        expect((await kv.get("ns", `m${i}`, NOW))?.metadata).toEqual(metadata);
      }
    });

    it("overwrites value, metadata and expiration on put", async () => {
      await kv.put("ns", "k", bytes("one"), { expiration: NOW + 120_000, metadata: { v: 1 } });
      await kv.put("ns", "k", bytes("two"), none);
      const entry = await kv.get("ns", "k", NOW + 200_000);
      expect(text(entry?.value)).toBe("two");
      expect(entry?.metadata).toBeNull();
      expect(entry?.expiration).toBeNull();
    });

    it("reports expiration in seconds and hides entries once it is reached", async () => {
      const expiration = NOW + 60_000;
      await kv.put("ns", "temp", bytes("v"), { expiration, metadata: null });
      expect((await kv.get("ns", "temp", NOW))?.expiration).toBe(expiration / 1000);
      expect(await kv.get("ns", "temp", expiration - 1)).not.toBeNull();
      expect(await kv.get("ns", "temp", expiration)).toBeNull();
      expect(await kv.get("ns", "temp", expiration + 1)).toBeNull();
      expect((await kv.getMany("ns", ["temp"], expiration)).size).toBe(0);
      expect((await kv.list("ns", { prefix: "", limit: 10, cursor: null }, expiration)).keys)
        .toEqual([]);
    });

    it("deletes keys, and deleting a missing key succeeds", async () => {
      await kv.put("ns", "k", bytes("v"), none);
      await kv.delete("ns", "k");
      expect(await kv.get("ns", "k", NOW)).toBeNull();
      await kv.delete("ns", "never-existed");
    });

    it("keeps namespaces apart", async () => {
      await kv.put("a", "same", bytes("from a"), none);
      await kv.put("b", "same", bytes("from b"), none);
      expect(text((await kv.get("a", "same", NOW))?.value)).toBe("from a");
      expect(text((await kv.get("b", "same", NOW))?.value)).toBe("from b");
      await kv.delete("a", "same");
      expect(await kv.get("a", "same", NOW)).toBeNull();
      expect(await kv.get("b", "same", NOW)).not.toBeNull();
      const listed = await kv.list("b", { prefix: "", limit: 10, cursor: null }, NOW);
      expect(listed.keys.map((k) => k.name)).toEqual(["same"]);
      expect((await kv.list("c", { prefix: "", limit: 10, cursor: null }, NOW)).keys).toEqual([]);
    });

    it("getMany returns the live entries only", async () => {
      await kv.put("ns", "a", bytes("A"), { expiration: null, metadata: { m: "a" } });
      await kv.put("ns", "b", bytes("B"), none);
      await kv.put("ns", "old", bytes("O"), { expiration: NOW, metadata: null });
      await kv.put("other", "c", bytes("C"), none);
      const found = await kv.getMany("ns", ["a", "b", "c", "old", "missing", "a"], NOW);
      expect([...found.keys()].sort()).toEqual(["a", "b"]);
      expect(text(found.get("a")?.value)).toBe("A");
      expect(found.get("a")?.metadata).toEqual({ m: "a" });
      expect((await kv.getMany("ns", [], NOW)).size).toBe(0);
    });

    it("lists in UTF-8 byte order with expiration and metadata only where set", async () => {
      // Byte order differs from JS string order for U+FFFF vs U+1F600.
      const keys = ["a", "B", "é", "\uffff", "😀", "a\u0001", "ab"];
      for (const key of keys) await kv.put("ns", key, bytes(key), none);
      await kv.put("ns", "meta", bytes("v"), {
        expiration: NOW + 3_600_000,
        metadata: { tag: 1 },
      });
      const listed = await kv.list("ns", { prefix: "", limit: 100, cursor: null }, NOW);
      expect(listed.keys.map((k) => k.name)).toEqual([
        "B",
        "a",
        "a\u0001",
        "ab",
        "meta",
        "é",
        "\uffff",
        "😀",
      ]);
      expect(listed.list_complete).toBe(true);
      expect(listed.cursor).toBeUndefined();
      expect(listed.keys[0]).toEqual({ name: "B" });
      expect(listed.keys[4]).toEqual({
        name: "meta",
        expiration: (NOW + 3_600_000) / 1000,
        metadata: { tag: 1 },
      });
    });

    it("lists by prefix, treating LIKE and GLOB wildcards literally", async () => {
      const keys = ["user:1", "user:2", "user;", "users", "use", "a%b", "a%c", "axb", "a_b", "*x"];
      for (const key of keys) await kv.put("ns", key, bytes("v"), none);
      const names = async (prefix: string) =>
        (await kv.list("ns", { prefix, limit: 100, cursor: null }, NOW)).keys.map((k) => k.name);
      expect(await names("user:")).toEqual(["user:1", "user:2"]);
      expect(await names("user")).toEqual(["user:1", "user:2", "user;", "users"]);
      expect(await names("a%")).toEqual(["a%b", "a%c"]);
      expect(await names("a_")).toEqual(["a_b"]);
      expect(await names("*")).toEqual(["*x"]);
      expect(await names("zzz")).toEqual([]);
    });

    it("lists by prefixes ending in the highest code points", async () => {
      const keys = [
        "x\u{10ffff}",
        "x\u{10ffff}a",
        "x\u{10ffff}\u{10ffff}",
        "y",
        "x\ud7ff!",
        "x\ue000",
      ];
      for (const key of keys) await kv.put("ns", key, bytes("v"), none);
      const names = async (prefix: string) =>
        (await kv.list("ns", { prefix, limit: 100, cursor: null }, NOW)).keys.map((k) => k.name);
      expect(await names("x\u{10ffff}")).toEqual([
        "x\u{10ffff}",
        "x\u{10ffff}a",
        "x\u{10ffff}\u{10ffff}",
      ]);
      expect(await names("x\ud7ff")).toEqual(["x\ud7ff!"]);
      expect(await names("\u{10ffff}")).toEqual([]);
    });

    it("pages with an opaque cursor until list_complete", async () => {
      const keys = Array.from({ length: 7 }, (_, i) => `k${i}`);
      for (const key of keys) await kv.put("ns", key, bytes("v"), none);
      await kv.put("ns", "other", bytes("v"), none);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      while (true) {
        const page = await kv.list("ns", { prefix: "k", limit: 3, cursor }, NOW);
        pages++;
        seen.push(...page.keys.map((k) => k.name));
        if (page.list_complete) {
          expect(page.cursor).toBeUndefined();
          break;
        }
        expect(typeof page.cursor).toBe("string");
        expect(page.keys.length).toBe(3);
        cursor = page.cursor!;
      }
      expect(seen).toEqual(keys);
      expect(pages).toBe(3);
    });

    it("reports list_complete on a page that ends exactly at the last key", async () => {
      for (const key of ["a", "b", "c", "d"]) await kv.put("ns", key, bytes("v"), none);
      const first = await kv.list("ns", { prefix: "", limit: 2, cursor: null }, NOW);
      expect(first.list_complete).toBe(false);
      const second = await kv.list("ns", { prefix: "", limit: 2, cursor: first.cursor! }, NOW);
      expect(second.keys.map((k) => k.name)).toEqual(["c", "d"]);
      expect(second.list_complete).toBe(true);
    });

    it("skips expired keys when counting a page", async () => {
      await kv.put("ns", "a", bytes("v"), none);
      await kv.put("ns", "b", bytes("v"), { expiration: NOW, metadata: null });
      await kv.put("ns", "c", bytes("v"), none);
      const page = await kv.list("ns", { prefix: "", limit: 2, cursor: null }, NOW);
      expect(page.keys.map((k) => k.name)).toEqual(["a", "c"]);
      expect(page.list_complete).toBe(true);
    });

    it("rejects a cursor it did not make with ERR_KV_INVALID", async () => {
      const error = await kv.list("ns", { prefix: "", limit: 10, cursor: "%%%not a cursor" }, NOW)
        .catch((e) => e);
      expect(error).toBeInstanceOf(WorkyError);
      expect(error.code).toBe("ERR_KV_INVALID");
    });
  });
}
