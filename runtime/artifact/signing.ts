/**
 * Ed25519 keys and manifest signatures (WebCrypto).
 *
 * - A public key is written `ed25519:<base64 of the 32 raw bytes>`; that text is what
 *   operators list in `[registry] trusted_keys` and what a signed manifest names.
 * - A key file (from `worky keygen`) is JSON: `{ "type": "worky-ed25519", "publicKey":
 *   "ed25519:…", "privateKey": "<base64 PKCS#8>" }`, written with mode 0600.
 *
 * @module
 */
import { WorkyError } from "../errors.ts";
import { fromBase64, toBase64 } from "./_encoding.ts";
import { artifactId, type Manifest, signedPayload } from "./manifest.ts";

/** A loaded signing key. */
export interface SigningKey {
  /** `ed25519:<base64>` */
  publicKey: string;
  privateKey: CryptoKey;
}

/** The JSON of a key file. */
export interface KeyFile {
  type: "worky-ed25519";
  publicKey: string;
  privateKey: string;
}

const PREFIX = "ed25519:";

/**
 * Makes a new key pair and returns it as key-file JSON.
 *
 * @example
 * ```ts
 * import { generateKeyFile } from "./signing.ts";
 * const file = await generateKeyFile();
 * console.log(file.publicKey.startsWith("ed25519:")); // true
 * ```
 */
export async function generateKeyFile(): Promise<KeyFile> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return { type: "worky-ed25519", publicKey: PREFIX + toBase64(raw), privateKey: toBase64(pkcs8) };
}

/** Imports a key file's JSON text; `label` names the file in errors. */
export async function importKeyFile(text: string, label: string): Promise<SigningKey> {
  let file: Partial<KeyFile>;
  try {
    file = JSON.parse(text);
  } catch {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `key file ${label} is not JSON (expected a file from "worky keygen")`,
    );
  }
  if (file?.type !== "worky-ed25519" || typeof file.privateKey !== "string") {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `key file ${label} is not a worky Ed25519 key (expected a file from "worky keygen")`,
    );
  }
  try {
    const privateKey = await crypto.subtle.importKey(
      "pkcs8",
      fromBase64(file.privateKey),
      {
        name: "Ed25519",
      },
      false,
      ["sign"],
    );
    await parsePublicKey(String(file.publicKey));
    return { publicKey: String(file.publicKey), privateKey };
  } catch (err) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `key file ${label} holds no valid Ed25519 key: ${(err as Error).message}`,
    );
  }
}

/** Imports `ed25519:<base64>` for verifying; throws a clear error for anything else. */
async function parsePublicKey(text: string): Promise<CryptoKey> {
  let raw: Uint8Array<ArrayBuffer> | undefined;
  if (text.startsWith(PREFIX)) {
    try {
      raw = fromBase64(text.slice(PREFIX.length));
    } catch { /* reported below */ }
  }
  if (!raw || raw.length !== 32) {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${JSON.stringify(text)} is not a public key (expected "ed25519:" + base64 of 32 bytes)`,
    );
  }
  return await crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
}

/** Returns the manifest with `signature` set by `key`. */
export async function signManifest(m: Manifest, key: SigningKey): Promise<Manifest> {
  const { signature: _, ...unsigned } = m;
  const sig = await crypto.subtle.sign("Ed25519", key.privateKey, signedPayload(unsigned));
  return { ...unsigned, signature: { key: key.publicKey, value: toBase64(new Uint8Array(sig)) } };
}

/**
 * Checks that `m` is signed, by a key in `trustedKeys`, and that the signature matches
 * its fields. Throws `ERR_BUNDLE_TAMPERED` naming the artifact (`label`) otherwise.
 */
export async function verifyManifestSignature(
  m: Manifest,
  trustedKeys: readonly string[],
  label = artifactId(m),
): Promise<void> {
  if (!m.signature) {
    throw new WorkyError(
      "ERR_BUNDLE_TAMPERED",
      `artifact ${label} is not signed (build or publish it with a key from "worky keygen")`,
    );
  }
  if (!trustedKeys.includes(m.signature.key)) {
    throw new WorkyError(
      "ERR_BUNDLE_TAMPERED",
      `artifact ${label} is signed by ${m.signature.key}, which is not a trusted key` +
        (trustedKeys.length ? "" : " (no [registry] trusted_keys are configured)"),
    );
  }
  let ok = false;
  try {
    const key = await parsePublicKey(m.signature.key);
    ok = await crypto.subtle.verify(
      "Ed25519",
      key,
      fromBase64(m.signature.value),
      signedPayload(m),
    );
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new WorkyError(
      "ERR_BUNDLE_TAMPERED",
      `artifact ${label}: the signature does not match manifest.json (the manifest was changed after signing, or the signature is corrupt)`,
    );
  }
}
