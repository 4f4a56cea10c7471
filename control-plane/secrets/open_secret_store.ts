/** Opens the secret store of a database: the key from `WORKY_SECRET_KEY` or `<dataDir>/secret.key`. */
import type { Database } from "../storage/database.ts";
import { loadSecretKey } from "./secret_key.ts";
import { SecretStore } from "./secret_store.ts";

/**
 * @example
 * ```ts ignore
 * const store = await openSecretStore(await openDatabase(url), ".worky");
 * ```
 */
export async function openSecretStore(db: Database, dataDir: string): Promise<SecretStore> {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("WORKY_SECRET_KEY");
  } catch { /* no env permission: the key file */ }
  return new SecretStore(
    db.db,
    await loadSecretKey({ dataDir, env: { WORKY_SECRET_KEY: fromEnv } }),
  );
}
