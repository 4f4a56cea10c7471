/** The secret store on a real libSQL file: encryption at rest, scoping, key handling. */
import { afterEach, expect, it } from "vitest";
import { openDatabase } from "../../../control-plane/storage/database.ts";
import { loadSecretKey } from "../../../control-plane/secrets/secret_key.ts";
import { SecretStore } from "../../../control-plane/secrets/secret_store.ts";
import { tenantSecrets } from "../../../control-plane/storage/schema_secrets.ts";

let dir = "";
afterEach(async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
  dir = "";
});

async function open() {
  dir = await Deno.makeTempDir({ prefix: "worky-secrets-" });
  const db = await openDatabase(`file:${dir}/worky.db`);
  const key = await loadSecretKey({ dataDir: `${dir}/data` });
  return { db, store: new SecretStore(db.db, key) };
}

it("stores values encrypted: neither the row nor the database file holds the plaintext", async () => {
  const { db, store } = await open();
  await store.put("shop", "STRIPE_KEY", "sk_live_plaintext_marker");
  const [row] = await db.db.select().from(tenantSecrets);
  expect(new TextDecoder().decode(row.ciphertext)).not.toContain("plaintext_marker");
  expect(await store.forTenant("shop")).toEqual({ STRIPE_KEY: "sk_live_plaintext_marker" });
  db.close();
  const file = await Deno.readFile(`${dir}/worky.db`);
  let wal = new Uint8Array();
  try {
    wal = await Deno.readFile(`${dir}/worky.db-wal`);
  } catch { /* checkpointed */ }
  const text = new TextDecoder("latin1").decode(file) + new TextDecoder("latin1").decode(wal);
  expect(text).not.toContain("plaintext_marker");
});

it("the key file is created once with mode 0600 and reused", async () => {
  const { db } = await open();
  db.close();
  const info = await Deno.stat(`${dir}/data/secret.key`);
  expect(info.mode! & 0o777).toBe(0o600);
  const a = await loadSecretKey({ dataDir: `${dir}/data` });
  const b = await loadSecretKey({ dataDir: `${dir}/data` });
  expect(a.id).toBe(b.id);
});

it("secrets are per tenant; a row moved to another tenant does not decrypt", async () => {
  const { db, store } = await open();
  await store.put("a", "TOKEN", "for-a");
  await store.put("b", "OTHER", "for-b");
  expect(await store.forTenant("a")).toEqual({ TOKEN: "for-a" });
  expect(await store.list("b")).toEqual(["OTHER"]);
  await db.client.execute("UPDATE tenant_secrets SET tenant = 'b' WHERE tenant = 'a'");
  const err = await store.forTenant("b").catch((e) => e);
  expect(err.code).toBe("ERR_STORAGE");
  expect(err.message).toMatch(/secret TOKEN does not decrypt/);
  expect(err.message).not.toContain("for-a");
  db.close();
});

it("list gives names only, delete removes, bad names and a wrong key are clear errors", async () => {
  const { db, store } = await open();
  await store.put("shop", "B_KEY", "v1");
  await store.put("shop", "A_KEY", "v2");
  await store.put("shop", "A_KEY", "v3"); // replaces
  expect(await store.list("shop")).toEqual(["A_KEY", "B_KEY"]);
  expect(await store.delete("shop", "B_KEY")).toBe(true);
  expect(await store.delete("shop", "B_KEY")).toBe(false);
  expect(await store.forTenant("shop")).toEqual({ A_KEY: "v3" });
  await expect(store.put("shop", "1BAD", "x")).rejects.toThrow(/not a valid secret name/);
  const other = new SecretStore(
    db.db,
    await loadSecretKey({ dataDir: dir, env: { WORKY_SECRET_KEY: btoa("k".repeat(32)) } }),
  );
  await expect(other.forTenant("shop")).rejects.toThrow(
    /encrypted with key .* but the loaded key is/,
  );
  await expect(loadSecretKey({ dataDir: dir, env: { WORKY_SECRET_KEY: "short" } })).rejects
    .toThrow(/WORKY_SECRET_KEY must be the base64 of 32 random bytes/);
  db.close();
});
