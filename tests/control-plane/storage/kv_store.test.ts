import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../../control-plane/storage/database.ts";
import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";
import { runKvStorageContract } from "../../runtime/bindings/kv/storage.case.ts";

const cleanups: (() => Promise<void> | void)[] = [];

async function openTemp(): Promise<{ database: Database; dir: string; url: string }> {
  const dir = await Deno.makeTempDir({ prefix: "worky-kv-" });
  const url = `file:${dir}/kv.db`;
  const database = await openDatabase(url);
  return { database, dir, url };
}

runKvStorageContract("LibsqlKvStore on a libSQL file", async () => {
  const { database, dir } = await openTemp();
  return {
    storage: new LibsqlKvStore(database.db),
    async close() {
      database.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

describe("LibsqlKvStore", () => {
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  async function temp() {
    const opened = await openTemp();
    cleanups.push(() => Deno.remove(opened.dir, { recursive: true }));
    cleanups.push(() => opened.database.close());
    return opened;
  }

  it("keeps entries across close and reopen", async () => {
    const { database, url } = await temp();
    const kv = new LibsqlKvStore(database.db);
    await kv.put("ns", "k", new Uint8Array([1, 2, 3]), { expiration: null, metadata: { a: 1 } });
    database.close();
    const reopened = await openDatabase(url);
    cleanups.push(() => reopened.close());
    // Either the Database or its drizzle db will do.
    const entry = await new LibsqlKvStore(reopened).get("ns", "k", Date.now());
    expect([...entry!.value]).toEqual([1, 2, 3]);
    expect(entry!.metadata).toEqual({ a: 1 });
  });

  it("purgeExpired deletes only rows whose expiration has passed", async () => {
    const { database } = await temp();
    const kv = new LibsqlKvStore(database.db);
    const now = 1_700_000_000_000;
    const none = { metadata: null };
    await kv.put("a", "old", new Uint8Array([1]), { ...none, expiration: now - 1 });
    await kv.put("b", "due", new Uint8Array([1]), { ...none, expiration: now });
    await kv.put("a", "fresh", new Uint8Array([1]), { ...none, expiration: now + 1 });
    await kv.put("a", "forever", new Uint8Array([1]), { ...none, expiration: null });
    expect(await kv.purgeExpired(now)).toBe(2);
    const rows = await database.client.execute("SELECT key FROM kv_entries ORDER BY key");
    expect(rows.rows.map((row) => row.key)).toEqual(["forever", "fresh"]);
  });

  it("lists and purges through indexes, not table scans", async () => {
    const { database } = await temp();
    const plan = async (sql: string, args: (string | number)[]) =>
      (await database.client.execute({ sql: `EXPLAIN QUERY PLAN ${sql}`, args })).rows
        .map((row) => String(row.detail)).join("\n");
    const list = await plan(
      "SELECT key FROM kv_entries WHERE namespace = ? AND key >= ? AND key < ? " +
        "AND (expiration IS NULL OR expiration > ?) ORDER BY key LIMIT 10",
      ["ns", "a", "b", 0],
    );
    expect(list).toMatch(/USING (PRIMARY KEY|INDEX sqlite_autoindex_kv_entries_1)/);
    expect(list).not.toMatch(/TEMP B-TREE/);
    const purge = await plan("DELETE FROM kv_entries WHERE expiration <= ?", [0]);
    expect(purge).toMatch(/kv_entries_expiration_idx/);
  });

  it("wraps database failures in ERR_STORAGE", async () => {
    const { database } = await temp();
    const kv = new LibsqlKvStore(database.db);
    database.close();
    const error = await kv.get("ns", "k", 0).catch((e) => e);
    expect(error.code).toBe("ERR_STORAGE");
    expect(error.message).toMatch(/^KV storage get failed: /);
  });
});
