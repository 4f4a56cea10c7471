/**
 * Tenant secrets on libSQL, encrypted with AES-256-GCM (WebCrypto). Values
 * go in through `put` and come out only through `forTenant` (the deployment
 * that puts them on that tenant's `env`); `list` gives names. No method
 * logs or echoes a value, and no error message contains one.
 */
import { and, eq } from "drizzle-orm";
import type { WorkyDb } from "../storage/database.ts";
import { tenantSecrets } from "../storage/schema_secrets.ts";
import { BINDING_NAME, TENANT_NAME } from "../config/_schema.ts";
import { WorkyError } from "../../runtime/errors.ts";
import type { SecretKey } from "./secret_key.ts";

/** Largest secret value, bytes (Cloudflare's limit too). */
export const MAX_SECRET_BYTES = 5 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the runtime asks for when a tenant deploys (see `runtime/deployment.ts`). */
export interface SecretSource {
  forTenant(tenant: string): Promise<Record<string, string>>;
}

/**
 * @example
 * ```ts ignore
 * const store = new SecretStore(database.db, await loadSecretKey({ dataDir }));
 * await store.put("shop", "STRIPE_KEY", "sk_live_…");
 * console.log(await store.list("shop")); // ["STRIPE_KEY"]
 * ```
 */
export class SecretStore implements SecretSource {
  constructor(readonly db: WorkyDb, readonly key: SecretKey, readonly now = () => Date.now()) {}

  #check(tenant: string, name: string) {
    if (!TENANT_NAME.test(tenant)) {
      throw new WorkyError("ERR_BAD_REQUEST", `${JSON.stringify(tenant)} is not a tenant name`);
    }
    if (!BINDING_NAME.test(name)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `${JSON.stringify(name)} is not a valid secret name (letters, digits and _, ` +
          `not starting with a digit)`,
      );
    }
  }

  #aad(tenant: string, name: string) {
    return enc.encode(`worky-secret:${tenant}/${name}`);
  }

  /** Stores (or replaces) a secret. */
  async put(tenant: string, name: string, value: string): Promise<void> {
    this.#check(tenant, name);
    const plain = enc.encode(value);
    if (plain.length === 0) throw new WorkyError("ERR_BAD_REQUEST", `secret ${name}: empty value`);
    if (plain.length > MAX_SECRET_BYTES) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `secret ${name}: value is ${plain.length} bytes, more than ${MAX_SECRET_BYTES}`,
      );
    }
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ciphertext = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: this.#aad(tenant, name) },
        this.key.key,
        plain,
      ),
    );
    const row = { tenant, name, iv, ciphertext, keyId: this.key.id, updatedAt: this.now() };
    await this.db.insert(tenantSecrets).values(row).onConflictDoUpdate({
      target: [tenantSecrets.tenant, tenantSecrets.name],
      set: { iv, ciphertext, keyId: this.key.id, updatedAt: row.updatedAt },
    });
  }

  /** Names of a tenant's secrets, sorted. */
  async list(tenant: string): Promise<string[]> {
    const rows = await this.db.select({ name: tenantSecrets.name }).from(tenantSecrets)
      .where(eq(tenantSecrets.tenant, tenant));
    return rows.map((r) => r.name).sort();
  }

  /** Deletes a secret; false when there was none. */
  async delete(tenant: string, name: string): Promise<boolean> {
    this.#check(tenant, name);
    const gone = await this.db.delete(tenantSecrets)
      .where(and(eq(tenantSecrets.tenant, tenant), eq(tenantSecrets.name, name)))
      .returning({ name: tenantSecrets.name });
    return gone.length > 0;
  }

  /** Every secret of a tenant, decrypted: for its `env` only. */
  async forTenant(tenant: string): Promise<Record<string, string>> {
    const rows = await this.db.select().from(tenantSecrets).where(eq(tenantSecrets.tenant, tenant));
    const out: Record<string, string> = {};
    for (const row of rows) {
      if (row.keyId !== this.key.id) {
        throw new WorkyError(
          "ERR_CONFIG_INVALID",
          `tenant "${tenant}": secret ${row.name} was encrypted with key ${row.keyId}, ` +
            `but the loaded key is ${this.key.id} (WORKY_SECRET_KEY or <data dir>/secret.key)`,
        );
      }
      try {
        const plain = await crypto.subtle.decrypt(
          {
            name: "AES-GCM",
            iv: row.iv as Uint8Array<ArrayBuffer>,
            additionalData: this.#aad(tenant, row.name),
          },
          this.key.key,
          row.ciphertext as Uint8Array<ArrayBuffer>,
        );
        out[row.name] = dec.decode(plain);
      } catch {
        throw new WorkyError(
          "ERR_STORAGE",
          `tenant "${tenant}": secret ${row.name} does not decrypt (tampered or moved row)`,
        );
      }
    }
    return out;
  }
}
