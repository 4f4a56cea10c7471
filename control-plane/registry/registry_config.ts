/**
 * The `[registry]` table of `worky.toml` and `registry:` module specs.
 *
 * ```toml
 * [registry]
 * trusted_keys = ["ed25519:3q2+7w…="]   # public keys whose signed artifacts this server runs
 *
 * [tenants.api]
 * module = "registry:acme/api@^1.2"      # resolved and verified at deploy
 * ```
 *
 * @module
 */
import { z } from "zod";
import { validRange } from "semver";
import { checkPackageName } from "../../runtime/artifact/manifest.ts";

/** A public key as written in `trusted_keys`. */
export const PUBLIC_KEY: RegExp = /^ed25519:[A-Za-z0-9+/]{43}=$/;

/** `[registry]`, returned with camelCase keys. */
export const registrySchema = z.strictObject({
  trusted_keys: z.array(
    z.string().regex(PUBLIC_KEY, {
      error: (iss) =>
        `${
          JSON.stringify(iss.input)
        } is not a public key (expected "ed25519:" + base64 of 32 bytes, as printed by "worky keygen")`,
    }),
  ).default([]),
}).transform((r) => ({ trustedKeys: r.trusted_keys }));

/** Normalized `[registry]`. */
export interface RegistryConfig {
  /** Public keys (`ed25519:…`) whose signatures this server accepts. */
  trustedKeys: string[];
}

/** The prefix of a registry module spec. */
export const REGISTRY_PREFIX = "registry:";

/** True when a tenant's `module` names a registry artifact rather than a file. */
export function isRegistrySpec(module: string): boolean {
  return module.startsWith(REGISTRY_PREFIX);
}

/**
 * Checks `registry:scope/name@range` (range: semver range or dist-tag; missing = latest).
 * Returns an error message or undefined.
 *
 * @example
 * ```ts
 * import { checkRegistrySpec } from "./registry_config.ts";
 * console.log(checkRegistrySpec("registry:acme/api@^1.2")); // undefined
 * ```
 */
export function checkRegistrySpec(module: string): string | undefined {
  const ref = module.slice(REGISTRY_PREFIX.length);
  const at = ref.indexOf("@");
  const name = at === -1 ? ref : ref.slice(0, at);
  const range = at === -1 ? "latest" : ref.slice(at + 1);
  const badName = checkPackageName(name);
  if (badName) return `${JSON.stringify(module)}: ${badName}`;
  if (!/^[a-z][a-z0-9._-]{0,31}$/i.test(range) && validRange(range) === null) {
    return `${
      JSON.stringify(module)
    }: "${range}" is neither a semver range nor a dist-tag (expected "registry:scope/name@^1.2")`;
  }
  return undefined;
}
