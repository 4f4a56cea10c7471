import { afterEach, describe, expect, it } from "vitest";
import {
  databaseFileUrl,
  MIGRATIONS_FOLDER,
  openDatabase,
} from "../../../control-plane/storage/database.ts";
import { WorkyError } from "../../../runtime/errors.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "worky-db-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  return dir;
}

describe("openDatabase", () => {
  it("creates the parent folder and tunes the file for WAL + synchronous=NORMAL", async () => {
    const dir = await tempDir();
    const database = await openDatabase(`file:${dir}/nested/deeper/worky.db`, {
      busyTimeoutMs: 1234,
    });
    cleanups.push(() => database.close());
    const pragma = async (name: string) =>
      Object.values((await database.client.execute(`PRAGMA ${name}`)).rows[0])[0];
    expect(await pragma("journal_mode")).toBe("wal");
    // Every pooled connection, not just the first: fire many at once.
    const many = await Promise.all(Array.from({ length: 30 }, () => pragma("synchronous")));
    expect(new Set(many)).toEqual(new Set([1])); // NORMAL
    const timeouts = await Promise.all(Array.from({ length: 30 }, () => pragma("busy_timeout")));
    expect(new Set(timeouts)).toEqual(new Set([1234]));
    expect((await Deno.stat(`${dir}/nested/deeper/worky.db`)).isFile).toBe(true);
  });

  it("applies the migrations once, and reopening is a no-op", async () => {
    const dir = await tempDir();
    const url = `file://${dir}/worky.db`;
    const first = await openDatabase(url);
    const tables = await first.client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    );
    expect(tables.rows.map((row) => row.name)).toContain("kv_entries");
    const applied = await first.client.execute("SELECT count(*) AS n FROM __drizzle_migrations");
    first.close();
    first.close(); // idempotent

    const second = await openDatabase(url);
    cleanups.push(() => second.close());
    const again = await second.client.execute("SELECT count(*) AS n FROM __drizzle_migrations");
    expect(again.rows[0].n).toBe(applied.rows[0].n);
    const journal = JSON.parse(await Deno.readTextFile(`${MIGRATIONS_FOLDER}/meta/_journal.json`));
    expect(again.rows[0].n).toBe(journal.entries.length);
  });

  it("survives two processes' worth of concurrent first opens", async () => {
    const dir = await tempDir();
    const url = `file:${dir}/race.db`;
    const opened = await Promise.all([openDatabase(url), openDatabase(url)]);
    for (const database of opened) cleanups.push(() => database.close());
    const rows = await opened[1].client.execute("SELECT count(*) AS n FROM kv_entries");
    expect(rows.rows[0].n).toBe(0);
  });

  it("opens a private in-memory database", async () => {
    const database = await openDatabase(":memory:");
    cleanups.push(() => database.close());
    const rows = await database.client.execute("SELECT count(*) AS n FROM kv_entries");
    expect(rows.rows[0].n).toBe(0);
  });

  it("handles paths that need escaping in a URL", async () => {
    const dir = await tempDir();
    const path = `${dir}/with space#and?marks%/worky.db`;
    const database = await openDatabase(databaseFileUrl(path));
    cleanups.push(() => database.close());
    expect((await Deno.stat(path)).isFile).toBe(true);
  });

  it("rejects URLs libSQL does not support with ERR_CONFIG_INVALID", async () => {
    const error = await openDatabase("ftp://example.com/db").catch((e) => e);
    expect(error).toBeInstanceOf(WorkyError);
    expect(error.code).toBe("ERR_CONFIG_INVALID");
    expect(error.message).toContain("ftp://example.com/db");
  });

  it("reports a database it cannot open as ERR_STORAGE", async () => {
    const dir = await tempDir();
    await Deno.writeTextFile(`${dir}/not-a-db`, "this is not sqlite ".repeat(100));
    const error = await openDatabase(`file:${dir}/not-a-db`).catch((e) => e);
    expect(error).toBeInstanceOf(WorkyError);
    expect(error.code).toBe("ERR_STORAGE");
  });
});

describe("openDatabase error messages", () => {
  it("never echo an auth token from the URL", async () => {
    const error = await openDatabase("ftp://user:secret@example.com/db?authToken=secret")
      .catch((e) => e);
    expect(error).toBeInstanceOf(WorkyError);
    expect(error.message).toContain("ftp://example.com/db");
    expect(error.message).not.toContain("secret");
  });
});
