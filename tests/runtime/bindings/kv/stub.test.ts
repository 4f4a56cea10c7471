/**
 * The tenant-facing KVNamespace end to end: the real stub wired to the real
 * host plugin over a real libSQL file; only the transport is direct
 * (structured clone with transfer, errors as `{ code, message }`).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createKvStub } from "../../../../runtime/bindings/kv/stub.worker.ts";
import type { KVNamespace } from "../../../../runtime/bindings/kv/types.ts";
import type { RpcCall } from "../../../../runtime/bindings/types.ts";
import { directRpc, type KvHarness, openKvHarness, rejection, START } from "./_harness.ts";

let h: KvHarness;
let kv: KVNamespace;
let other: KVNamespace;
let calls: { method: string; transfer?: Transferable[] }[];

beforeEach(async () => {
  h = await openKvHarness();
  const rpc = directRpc({ CACHE: h.host("t:CACHE", "CACHE"), OTHER: h.host("u:OTHER", "OTHER") });
  calls = [];
  const spy: RpcCall = (binding, method, args, transfer) => {
    calls.push({ method, transfer });
    return rpc(binding, method, args, transfer);
  };
  kv = createKvStub(
    { name: "CACHE", kind: "kv", config: { namespace: "t:CACHE" } },
    spy,
  ) as KVNamespace;
  other = createKvStub(
    { name: "OTHER", kind: "kv", config: { namespace: "u:OTHER" } },
    spy,
  ) as KVNamespace;
});
afterEach(async () => {
  await h.close();
});

function chunks(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      const next = parts.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

describe("KVNamespace stub: get", () => {
  it("returns null for a missing key in every type", async () => {
    expect(await kv.get("missing")).toBeNull();
    expect(await kv.get("missing", "json")).toBeNull();
    expect(await kv.get("missing", "arrayBuffer")).toBeNull();
    expect(await kv.get("missing", { type: "stream" })).toBeNull();
  });

  it("decodes text (default), json, arrayBuffer and stream", async () => {
    await kv.put("doc", JSON.stringify({ hello: "wörld" }));
    expect(await kv.get("doc")).toBe('{"hello":"wörld"}');
    expect(await kv.get("doc", { type: "text", cacheTtl: 60 })).toBe('{"hello":"wörld"}');
    expect(await kv.get<{ hello: string }>("doc", "json")).toEqual({ hello: "wörld" });
    const buffer = await kv.get("doc", "arrayBuffer");
    expect(buffer).toBeInstanceOf(ArrayBuffer);
    expect(new TextDecoder().decode(buffer!)).toBe('{"hello":"wörld"}');
    const stream = await kv.get("doc", "stream");
    expect(stream).toBeInstanceOf(ReadableStream);
    expect(await new Response(stream).text()).toBe('{"hello":"wörld"}');
  });

  it("streams an empty value as an empty stream", async () => {
    await kv.put("empty", "");
    expect(await kv.get("empty")).toBe("");
    expect(await new Response(await kv.get("empty", "stream")).text()).toBe("");
  });

  it("rejects an unknown type and a short cacheTtl", async () => {
    // deno-lint-ignore no-explicit-any
    const error = await rejection(kv.get("k", "banana" as any));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(
      'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".',
    );
    expect((await rejection(kv.get("k", { type: "text", cacheTtl: 29 }))).message).toBe(
      "KV GET failed: 400 Invalid cache_ttl of 29. Cache TTL must be at least 30.",
    );
  });

  it("coerces non-string keys like Cloudflare", async () => {
    // deno-lint-ignore no-explicit-any
    await kv.put(42 as any, "answer");
    expect(await kv.get("42")).toBe("answer");
  });
});

describe("KVNamespace stub: bulk get", () => {
  it("returns a Map in request order with null for missing keys", async () => {
    await kv.put("a", "1");
    await kv.put("b", '{"x":2}');
    const texts = await kv.get(["b", "missing", "a"]);
    expect(texts).toBeInstanceOf(Map);
    expect([...texts.entries()]).toEqual([["b", '{"x":2}'], ["missing", null], ["a", "1"]]);
    const json = await kv.get(["a", "b"], "json");
    expect([...json.entries()]).toEqual([["a", 1], ["b", { x: 2 }]]);
    expect(calls.filter((c) => c.method === "getMany")).toHaveLength(2);
  });

  it("rejects stream and arrayBuffer types, and non-JSON values under json", async () => {
    expect((await rejection(kv.get(["a"], { type: "stream" } as never))).message).toBe(
      'KV GET_BULK failed: 400 "stream" is not a valid type. Use "json" or "text"',
    );
    expect((await rejection(kv.get(["a"], "arrayBuffer" as never))).message).toBe(
      'KV GET_BULK failed: 400 "arrayBuffer" is not a valid type. Use "json" or "text"',
    );
    await kv.put("plain", "not json");
    expect((await rejection(kv.get(["plain"], "json"))).message).toBe(
      "KV GET_BULK failed: 400 At least one of the requested keys corresponds to a non-json value",
    );
  });

  it("enforces the 100-key maximum from the host", async () => {
    const keys = Array.from({ length: 101 }, (_, i) => `k${i}`);
    const error = await rejection(kv.get(keys));
    expect(error.message).toBe("KV GET_BULK failed: 400 You can request a maximum of 100 keys");
    expect(error.code).toBe("ERR_KV_INVALID");
    expect((await kv.get(keys.slice(0, 100))).size).toBe(100);
  });
});

describe("KVNamespace stub: getWithMetadata", () => {
  it("returns value, metadata and a null cacheStatus", async () => {
    await kv.put("k", "v", { metadata: { owner: "ana", at: new Date(0) } });
    expect(await kv.getWithMetadata("k")).toEqual({
      value: "v",
      // Metadata is JSON: the Date became its ISO string.
      metadata: { owner: "ana", at: "1970-01-01T00:00:00.000Z" },
      cacheStatus: null,
    });
    const json = await kv.getWithMetadata<{ owner: string }>("k", "arrayBuffer");
    expect(new TextDecoder().decode(json.value!)).toBe("v");
    expect(await kv.getWithMetadata("missing")).toEqual({
      value: null,
      metadata: null,
      cacheStatus: null,
    });
  });

  it("returns a Map for an array of keys", async () => {
    await kv.put("a", '"A"', { metadata: 1 });
    await kv.put("b", '"B"');
    const result = await kv.getWithMetadata(["a", "b", "c"], "json");
    expect([...result.entries()]).toEqual([
      ["a", { value: "A", metadata: 1, cacheStatus: null }],
      ["b", { value: "B", metadata: null, cacheStatus: null }],
      ["c", { value: null, metadata: null, cacheStatus: null }],
    ]);
  });
});

describe("KVNamespace stub: put", () => {
  it("stores ArrayBuffers and views without detaching the tenant's buffer", async () => {
    const buffer = Uint8Array.from([0, 1, 2, 253, 254, 255]).buffer;
    await kv.put("ab", buffer);
    expect(buffer.byteLength).toBe(6); // still usable
    expect([...new Uint8Array((await kv.get("ab", "arrayBuffer"))!)]).toEqual([
      0,
      1,
      2,
      253,
      254,
      255,
    ]);

    const big = Uint8Array.from({ length: 100 }, (_, i) => i);
    await kv.put("view", big.subarray(10, 14));
    expect([...new Uint8Array((await kv.get("view", "arrayBuffer"))!)]).toEqual([10, 11, 12, 13]);
    expect(big.byteLength).toBe(100);

    await kv.put("dv", new DataView(big.buffer, 98, 2));
    expect([...new Uint8Array((await kv.get("dv", "arrayBuffer"))!)]).toEqual([98, 99]);

    const shared = new Uint8Array(new SharedArrayBuffer(3));
    shared.set([7, 8, 9]);
    await kv.put("sab", shared);
    expect([...new Uint8Array((await kv.get("sab", "arrayBuffer"))!)]).toEqual([7, 8, 9]);
  });

  it("transfers the buffer it sends", async () => {
    await kv.put("k", "value");
    const put = calls.find((c) => c.method === "put")!;
    expect(put.transfer).toHaveLength(1);
    expect(put.transfer![0]).toBeInstanceOf(ArrayBuffer);
  });

  it("reads a ReadableStream to its end", async () => {
    const encoder = new TextEncoder();
    await kv.put("s", chunks(encoder.encode("hel"), encoder.encode("lo "), encoder.encode("kv")));
    expect(await kv.get("s")).toBe("hello kv");
    await kv.put("one", chunks(encoder.encode("single")));
    expect(await kv.get("one")).toBe("single");
    await kv.put("none", chunks());
    expect(await kv.get("none")).toBe("");
  });

  it("stops reading a stream past 25 MiB", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024 * 1024));
      },
    });
    const error = await rejection(kv.put("huge", endless));
    expect(error.message).toMatch(/^KV PUT failed: 413 Value length of at least \d+ exceeds/);
    expect(pulled).toBeLessThan(30);
    expect(calls.filter((c) => c.method === "put")).toHaveLength(0);
  });

  it("rejects values of other types with a TypeError", async () => {
    // deno-lint-ignore no-explicit-any
    const error = await rejection(kv.put("k", {} as any));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe(
      "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and ReadableStreams as values.",
    );
    const detached = new ArrayBuffer(4);
    structuredClone(detached, { transfer: [detached] });
    expect(await rejection(kv.put("k", detached))).toBeInstanceOf(TypeError);
  });

  it("surfaces the host's limit errors as rejections", async () => {
    const ttl = await rejection(kv.put("k", "v", { expirationTtl: 59 }));
    expect(ttl.message).toBe(
      "KV PUT failed: 400 Invalid expiration_ttl of 59. Expiration TTL must be at least 60.",
    );
    expect(ttl.code).toBe("ERR_KV_INVALID");
    const key = await rejection(kv.put("k".repeat(513), "v"));
    expect(key.code).toBe("ERR_KV_LIMIT");
    const metadata = await rejection(kv.put("k", "v", { metadata: "m".repeat(1024) }));
    expect(metadata.message).toBe(
      "KV PUT failed: 413 Metadata length of 1026 exceeds limit of 1024.",
    );
    expect((await rejection(kv.get(""))).message).toBe("Key name cannot be empty.");
  });

  it("expires entries on the host's clock", async () => {
    await kv.put("session", "s", { expirationTtl: 300 });
    await kv.put("until", "u", { expiration: START / 1000 + 120 });
    const { keys } = await kv.list();
    expect(keys).toEqual([
      { name: "session", expiration: START / 1000 + 300 },
      { name: "until", expiration: START / 1000 + 120 },
    ]);
    h.clock.advance(120_000);
    expect(await kv.get("until")).toBeNull();
    expect(await kv.get("session")).toBe("s");
    h.clock.advance(180_000);
    expect(await kv.get("session")).toBeNull();
    expect((await kv.list()).keys).toEqual([]);
  });
});

describe("KVNamespace stub: delete and list", () => {
  it("deletes", async () => {
    await kv.put("k", "v");
    await kv.delete("k");
    expect(await kv.get("k")).toBeNull();
    await kv.delete("k");
  });

  it("lists with Cloudflare's result shape", async () => {
    for (const key of ["b", "a", "c"]) await kv.put(key, "v", { metadata: { key } });
    const all = await kv.list();
    expect(all).toEqual({
      keys: [
        { name: "a", metadata: { key: "a" } },
        { name: "b", metadata: { key: "b" } },
        { name: "c", metadata: { key: "c" } },
      ],
      list_complete: true,
      cacheStatus: null,
    });
    expect("cursor" in all).toBe(false);

    const first = await kv.list({ limit: 2 });
    expect(first.list_complete).toBe(false);
    if (first.list_complete) throw new Error("unreachable");
    expect(first.keys.map((k) => k.name)).toEqual(["a", "b"]);
    const second = await kv.list({ limit: 2, cursor: first.cursor });
    expect(second.keys.map((k) => k.name)).toEqual(["c"]);
    expect(second.list_complete).toBe(true);

    expect((await kv.list({ prefix: "b", cursor: null })).keys.map((k) => k.name)).toEqual(["b"]);
    const limit = await rejection(kv.list({ limit: 1001 }));
    expect(limit.message).toBe(
      "KV GET failed: 400 Invalid key_count_limit of 1001. Please specify integer less than 1000.",
    );
  });

  it("keeps two bindings' namespaces apart", async () => {
    await kv.put("same", "mine");
    await other.put("same", "theirs");
    expect(await kv.get("same")).toBe("mine");
    expect(await other.get("same")).toBe("theirs");
    await other.delete("same");
    expect(await kv.get("same")).toBe("mine");
    expect((await other.list()).keys).toEqual([]);
  });
});
