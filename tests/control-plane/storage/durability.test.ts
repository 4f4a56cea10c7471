/**
 * "Every acknowledged write is durable": a writer process is killed with
 * SIGKILL in the middle of a stream of puts; every put it reported as done
 * must be in the database when it is opened again.
 */
import { afterEach, expect, it } from "vitest";
import { openDatabase } from "../../../control-plane/storage/database.ts";
import { LibsqlKvStore } from "../../../control-plane/storage/kv_store.ts";

const REPO = new URL("../../../", import.meta.url);
const TOTAL = 1_000_000;
const KILL_AFTER = 400;

let dir = "";
afterEach(async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
  dir = "";
});

const WRITER = `
import { openDatabase } from ${
  JSON.stringify(new URL("control-plane/storage/database.ts", REPO).href)
};
import { LibsqlKvStore } from ${
  JSON.stringify(new URL("control-plane/storage/kv_store.ts", REPO).href)
};
const [url, total] = Deno.args;
const database = await openDatabase(url);
const kv = new LibsqlKvStore(database.db);
const value = new Uint8Array(2048).fill(7);
const out = Deno.stdout;
const encoder = new TextEncoder();
for (let i = 0; i < Number(total); i++) {
  const key = "key-" + String(i).padStart(7, "0");
  await kv.put("durable", key, value, { expiration: null, metadata: { i } });
  // Acknowledge only after the put resolved; writeSync leaves no buffer behind.
  const line = encoder.encode(key + "\\n");
  let written = 0;
  while (written < line.length) written += out.writeSync(line.subarray(written));
}
`;

it("loses no acknowledged put when the writer is killed with SIGKILL", async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-durability-" });
  const url = `file:${dir}/state/kv.db`;
  // Create the schema first so the child's open is the ordinary, migrated case.
  (await openDatabase(url)).close();
  const script = `${dir}/writer.ts`;
  await Deno.writeTextFile(script, WRITER);

  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", new URL("deno.json", REPO).pathname, script, url, `${TOTAL}`],
    cwd: new URL(".", REPO).pathname,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();

  const acknowledged: string[] = [];
  const decoder = new TextDecoder();
  let pending = "";
  let killed = false;
  for await (const chunk of child.stdout) {
    pending += decoder.decode(chunk, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop()!;
    acknowledged.push(...lines);
    if (!killed && acknowledged.length >= KILL_AFTER) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  const errors = await stderr;
  expect(killed, `writer ended before ${KILL_AFTER} puts: ${errors}`).toBe(true);
  expect(status.signal).toBe("SIGKILL");
  expect(acknowledged.length).toBeLessThan(TOTAL);

  const database = await openDatabase(url);
  try {
    const kv = new LibsqlKvStore(database.db);
    const missing: string[] = [];
    for (let start = 0; start < acknowledged.length; start += 100) {
      const batch = acknowledged.slice(start, start + 100);
      const found = await kv.getMany("durable", batch, Date.now());
      for (const key of batch) {
        const entry = found.get(key);
        if (!entry || entry.value.byteLength !== 2048) missing.push(key);
      }
    }
    expect(missing).toEqual([]);
    const count = await database.client.execute(
      "SELECT count(*) AS n FROM kv_entries WHERE namespace = 'durable'",
    );
    // At most the one put in flight at the kill can be there unacknowledged.
    expect(Number(count.rows[0].n)).toBeGreaterThanOrEqual(acknowledged.length);
    expect(Number(count.rows[0].n)).toBeLessThanOrEqual(acknowledged.length + 1);
  } finally {
    database.close();
  }
});
