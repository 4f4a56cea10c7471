import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { kvPlugin } from "../../../../runtime/bindings/kv/host.ts";
import { KV_LIMITS, type KvWireListResult } from "../../../../runtime/bindings/kv/types.ts";
import type { BindingHost } from "../../../../runtime/bindings/types.ts";
import { ManualClock } from "../../../../runtime/clock.ts";
import { WorkyError } from "../../../../runtime/errors.ts";
import { type KvHarness, openKvHarness, rejection, START } from "./_harness.ts";

const meta = { tenant: "tenant" };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: unknown) => new TextDecoder().decode(value as Uint8Array);

let h: KvHarness;
let kv: BindingHost;
const call = (method: string, ...args: unknown[]) => kv.call(method, args, meta);
const put = (key: string, value: string | Uint8Array, options?: unknown) =>
  call("put", key, typeof value === "string" ? bytes(value) : value, options);
const list = (options?: unknown) => call("list", options) as Promise<KvWireListResult>;

async function expectError(promise: Promise<unknown>, code: string, message: string) {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(WorkyError);
  expect({ code: error.code, message: error.message }).toEqual({ code, message });
}

beforeEach(async () => {
  h = await openKvHarness();
  kv = h.host();
});
afterEach(async () => {
  await h.close();
});

describe("kvPlugin.createHost", () => {
  it("has kind kv", () => {
    expect(kvPlugin.kind).toBe("kv");
  });

  it("requires services.kv", () => {
    const create = () =>
      kvPlugin.createHost(
        { name: "CACHE", kind: "kv", config: { namespace: "n" } },
        { tenant: "shop", clock: new ManualClock(), services: {} },
      );
    expect(create).toThrow(WorkyError);
    expect(create).toThrow(/KV binding "CACHE" needs KV storage.*services\.kv/);
  });

  it("requires config.namespace", () => {
    let error: unknown;
    try {
      kvPlugin.createHost(
        { name: "CACHE", kind: "kv", config: {} },
        { tenant: "shop", clock: new ManualClock(), services: { kv: h.storage } },
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WorkyError);
    expect((error as WorkyError).code).toBe("ERR_CONFIG_INVALID");
    expect((error as WorkyError).message).toContain("config.namespace");
  });

  it("rejects unknown methods", async () => {
    await expectError(
      call("truncate"),
      "ERR_BAD_REQUEST",
      'KV binding "CACHE" has no method "truncate"',
    );
  });
});

describe("KV host: reads and writes", () => {
  it("gets null for a missing key and the bytes of a stored one", async () => {
    expect(await call("get", "missing")).toBeNull();
    await put("k", "v");
    expect(text(await call("get", "k"))).toBe("v");
  });

  it("keeps binary values intact", async () => {
    const value = Uint8Array.from({ length: 256 * 4 }, (_, i) => i % 256);
    await put("bin", value);
    const got = await call("get", "bin") as Uint8Array;
    expect(got).toBeInstanceOf(Uint8Array);
    expect([...got]).toEqual([...value]);
  });

  it("round-trips metadata through getWithMetadata and list", async () => {
    const metadata = { owner: "ana", tags: ["a", "b"], n: 1.5, nested: { ok: true } };
    await put("doc", "body", { metadata });
    expect(await call("getWithMetadata", "doc")).toEqual({ value: bytes("body"), metadata });
    expect(await call("getWithMetadata", "missing")).toBeNull();
    expect((await list()).keys).toEqual([{ name: "doc", metadata }]);
    await put("plain", "body");
    expect(await call("getWithMetadata", "plain")).toEqual({
      value: bytes("body"),
      metadata: null,
    });
  });

  it("deletes", async () => {
    await put("k", "v");
    await call("delete", "k");
    expect(await call("get", "k")).toBeNull();
    await call("delete", "k");
  });

  it("isolates namespaces that share a key", async () => {
    const other = h.host("other-tenant:CACHE");
    await put("same", "mine");
    await other.call("put", ["same", bytes("theirs")], meta);
    expect(text(await call("get", "same"))).toBe("mine");
    expect(text(await other.call("get", ["same"], meta))).toBe("theirs");
    await call("delete", "same");
    expect(await call("get", "same")).toBeNull();
    expect(text(await other.call("get", ["same"], meta))).toBe("theirs");
    expect((await list()).keys).toEqual([]);
  });

  it("getMany answers in request order, null where absent or expired", async () => {
    await put("a", "A", { metadata: { m: 1 } });
    await put("b", "B", { expirationTtl: 60 });
    await put("c", "C");
    h.clock.advance(60_000);
    const got = await call("getMany", ["c", "missing", "a", "b"]);
    expect(got).toEqual([
      { value: bytes("C"), metadata: null },
      null,
      { value: bytes("A"), metadata: { m: 1 } },
      null,
    ]);
  });
});

describe("KV host: expiration (manual clock)", () => {
  it("expires an expirationTtl entry once the clock passes it", async () => {
    await put("session", "s", { expirationTtl: 60, metadata: { u: 1 } });
    const listed = await list();
    expect(listed.keys).toEqual([
      { name: "session", expiration: START / 1000 + 60, metadata: { u: 1 } },
    ]);
    h.clock.advance(59_999);
    expect(text(await call("get", "session"))).toBe("s");
    h.clock.advance(1);
    expect(await call("get", "session")).toBeNull();
    expect(await call("getWithMetadata", "session")).toBeNull();
    expect(await call("getMany", ["session"])).toEqual([null]);
    expect((await list()).keys).toEqual([]);
  });

  it("expires an absolute expiration at that second", async () => {
    const expiration = START / 1000 + 3600;
    await put("k", "v", { expiration });
    expect((await list()).keys[0].expiration).toBe(expiration);
    h.clock.set(expiration * 1000 - 1);
    expect(await call("get", "k")).not.toBeNull();
    h.clock.set(expiration * 1000);
    expect(await call("get", "k")).toBeNull();
  });

  it("lets expirationTtl win over expiration, as Cloudflare does", async () => {
    await put("k", "v", { expirationTtl: 120, expiration: START / 1000 + 10_000 });
    expect((await list()).keys[0].expiration).toBe(START / 1000 + 120);
  });

  it("rejects an expirationTtl under 60 seconds", async () => {
    await expectError(
      put("k", "v", { expirationTtl: 59 }),
      "ERR_KV_INVALID",
      "KV PUT failed: 400 Invalid expiration_ttl of 59. Expiration TTL must be at least 60.",
    );
    await expectError(
      put("k", "v", { expirationTtl: 0 }),
      "ERR_KV_INVALID",
      "KV PUT failed: 400 Invalid expiration_ttl of 0. Please specify integer greater than 0.",
    );
    await expectError(
      put("k", "v", { expirationTtl: "soon" }),
      "ERR_KV_INVALID",
      "KV PUT failed: 400 Invalid expiration_ttl of soon. Please specify integer greater than 0.",
    );
    await put("k", "v", { expirationTtl: 60 });
  });

  it("rejects an absolute expiration less than 60 seconds ahead", async () => {
    const now = START / 1000;
    await expectError(
      put("k", "v", { expiration: now + 59 }),
      "ERR_KV_INVALID",
      `KV PUT failed: 400 Invalid expiration of ${now + 59}. ` +
        "Expiration times must be at least 60 seconds in the future.",
    );
    await expectError(
      put("k", "v", { expiration: now }),
      "ERR_KV_INVALID",
      `KV PUT failed: 400 Invalid expiration of ${now}. Please specify integer greater than ` +
        "the current number of seconds since the UNIX epoch.",
    );
    await put("k", "v", { expiration: now + 60 });
  });
});

describe("KV host: limits", () => {
  it("accepts a 512-byte key and rejects 513 bytes", async () => {
    const key512 = "é".repeat(256); // 2 bytes each
    await put(key512, "v");
    expect(text(await call("get", key512))).toBe("v");
    const key513 = key512 + "x";
    for (const [method, op] of [["get", "GET"], ["delete", "DELETE"], ["put", "PUT"]]) {
      await expectError(
        call(method, key513, bytes("v")),
        "ERR_KV_LIMIT",
        `KV ${op} failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.`,
      );
    }
  });

  it("rejects empty, dot and non-string keys", async () => {
    await expectError(put("", "v"), "ERR_KV_INVALID", "Key name cannot be empty.");
    await expectError(call("get", "."), "ERR_KV_INVALID", '"." is not allowed as a key name.');
    await expectError(call("delete", ".."), "ERR_KV_INVALID", '".." is not allowed as a key name.');
    await expectError(
      call("get", 42),
      "ERR_KV_INVALID",
      "Failed to execute 'get' on 'KvNamespace': parameter 1 is not of type 'string'.",
    );
    await expectError(
      call("get", "\ud800"),
      "ERR_KV_INVALID",
      "KV GET failed: 400 Could not URL-decode key name",
    );
  });

  it("accepts a 25 MiB value and rejects one byte more", async () => {
    const max = new Uint8Array(KV_LIMITS.MAX_VALUE_BYTES);
    max[max.length - 1] = 9;
    await put("big", max);
    const got = await call("get", "big") as Uint8Array;
    expect(got.byteLength).toBe(KV_LIMITS.MAX_VALUE_BYTES);
    expect(got[got.length - 1]).toBe(9);
    await expectError(
      put("bigger", new Uint8Array(KV_LIMITS.MAX_VALUE_BYTES + 1)),
      "ERR_KV_LIMIT",
      "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400.",
    );
    expect(await call("get", "bigger")).toBeNull();
  });

  it("rejects values that are not bytes", async () => {
    await expectError(
      call("put", "k", { not: "bytes" }),
      "ERR_KV_INVALID",
      "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.",
    );
  });

  it("accepts 1024 bytes of metadata and rejects 1025", async () => {
    const fits = "x".repeat(1022); // JSON adds two quotes
    await put("k", "v", { metadata: fits });
    expect(await call("getWithMetadata", "k")).toEqual({ value: bytes("v"), metadata: fits });
    await expectError(
      put("k2", "v", { metadata: fits + "x" }),
      "ERR_KV_LIMIT",
      "KV PUT failed: 413 Metadata length of 1025 exceeds limit of 1024.",
    );
    await expectError(
      put("k3", "v", { metadata: { n: 1n } }),
      "ERR_KV_INVALID",
      "KV PUT failed: 400 Metadata must be JSON-serializable: Do not know how to serialize a BigInt",
    );
  });

  it("bounds list limits to 1..1000, defaulting to 1000", async () => {
    await expectError(
      list({ limit: 1001 }),
      "ERR_KV_INVALID",
      "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify integer less than 1000.",
    );
    await expectError(
      list({ limit: 0 }),
      "ERR_KV_INVALID",
      "KV GET failed: 400 Invalid key_count_limit of 0. Please specify an integer greater than 0.",
    );
    expect((await list({ limit: 1000 })).list_complete).toBe(true);
  });

  it("bounds bulk gets to 1..100 valid keys", async () => {
    const keys = Array.from({ length: 101 }, (_, i) => `k${i}`);
    await expectError(
      call("getMany", keys),
      "ERR_KV_INVALID",
      "KV GET_BULK failed: 400 You can request a maximum of 100 keys",
    );
    expect(await call("getMany", keys.slice(0, 100))).toHaveLength(100);
    await expectError(
      call("getMany", []),
      "ERR_KV_INVALID",
      "KV GET_BULK failed: 400 You must request a minimum of 1 key",
    );
    await expectError(
      call("getMany", ["ok", ".."]),
      "ERR_KV_INVALID",
      "KV GET_BULK failed: 400 Key name .. is not legal",
    );
    await expectError(
      call("getMany", ["x".repeat(513)]),
      "ERR_KV_LIMIT",
      "KV GET_BULK failed: 414 Encoded length of 513 is too long",
    );
  });
});

describe("KV host: list", () => {
  it("pages through 2,500 keys in order with cursors", async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `item:${String(i).padStart(5, "0")}`);
    // Insert out of order; the listing must still come back sorted.
    for (const key of [...keys].reverse()) await put(key, "v");
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    while (true) {
      const page = await list(cursor === undefined ? {} : { cursor });
      sizes.push(page.keys.length);
      seen.push(...page.keys.map((k) => k.name));
      if (page.list_complete) {
        expect(page.cursor).toBeUndefined();
        break;
      }
      cursor = page.cursor;
      expect(typeof cursor).toBe("string");
    }
    expect(sizes).toEqual([1000, 1000, 500]);
    expect(seen).toEqual(keys);
  });

  it("lists by prefix with a limit and cursor", async () => {
    for (const key of ["user:1", "user:2", "user:3", "users", "admin:1"]) await put(key, "v");
    const first = await list({ prefix: "user:", limit: 2 });
    expect(first.keys.map((k) => k.name)).toEqual(["user:1", "user:2"]);
    expect(first.list_complete).toBe(false);
    const second = await list({ prefix: "user:", limit: 2, cursor: first.cursor });
    expect(second.keys.map((k) => k.name)).toEqual(["user:3"]);
    expect(second.list_complete).toBe(true);
    expect((await list({ prefix: "nobody" })).keys).toEqual([]);
    expect((await list({ prefix: "\ud800" })).keys).toEqual([]);
  });

  it("rejects a tampered cursor", async () => {
    await expectError(
      list({ cursor: "@@not-a-cursor@@" }),
      "ERR_KV_INVALID",
      "KV GET failed: 400 Invalid cursor",
    );
  });
});
