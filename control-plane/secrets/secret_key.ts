/**
 * The key that encrypts tenant secrets at rest: `WORKY_SECRET_KEY` (base64 of
 * 32 bytes) or, without it, `<data dir>/secret.key`, created on first use with
 * mode 0600. The key never leaves this process and is never logged.
 */
import { WorkyError } from "../../runtime/errors.ts";

/** The AES-GCM key and a short id of it (stored beside each ciphertext). */
export interface SecretKey {
  key: CryptoKey;
  id: string;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    const bin = atob(text.trim());
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

async function importKey(raw: Uint8Array<ArrayBuffer>): Promise<SecretKey> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  const id = [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, id };
}

/**
 * Loads (or creates) the secret key.
 *
 * @example
 * ```ts ignore
 * const key = await loadSecretKey({ dataDir: ".worky", env: Deno.env.toObject() });
 * ```
 */
export async function loadSecretKey(
  options: { dataDir: string; env?: Record<string, string | undefined> },
): Promise<SecretKey> {
  const fromEnv = options.env?.WORKY_SECRET_KEY;
  if (fromEnv !== undefined && fromEnv !== "") {
    const raw = fromBase64(fromEnv);
    if (!raw || raw.length !== 32) {
      throw new WorkyError(
        "ERR_CONFIG_INVALID",
        "WORKY_SECRET_KEY must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
      );
    }
    return await importKey(raw);
  }
  const path = `${options.dataDir}/secret.key`;
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (text === undefined) {
    await Deno.mkdir(options.dataDir, { recursive: true });
    const raw = crypto.getRandomValues(new Uint8Array(32));
    try {
      // createNew: two processes starting at once don't overwrite each other's key
      await Deno.writeTextFile(path, toBase64(raw) + "\n", { createNew: true, mode: 0o600 });
      await Deno.chmod(path, 0o600);
      return await importKey(raw);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      text = await Deno.readTextFile(path);
    }
  }
  const raw = fromBase64(text);
  if (!raw || raw.length !== 32) {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${path} is not a Worky secret key (expected the base64 of 32 bytes); ` +
        `restore it from a backup: secrets encrypted with it can't be read without it`,
    );
  }
  return await importKey(raw);
}
