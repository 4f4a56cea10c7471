/**
 * The artifact manifest (`manifest.json`): what an artifact is (name, version, entry),
 * what it holds (sha256 and size of every file), what it asks for (permissions, KV
 * bindings, cron triggers), when it was built, and its Ed25519 signature.
 *
 * The signature covers {@linkcode signedPayload}: the canonical JSON (keys sorted, no
 * whitespace) of every field except `signature`. `digest` is the sha256 of the canonical
 * JSON of `files` alone, so it depends only on the bundled bytes: the same sources give the
 * same digest whatever the build time.
 *
 * @module
 */
import { z } from "zod";
import { valid as validSemver } from "semver";
import { WorkyError } from "../errors.ts";
import { canonicalJson, sha256Hex } from "./_encoding.ts";

/** Package names: `scope/name`, lowercase, like npm's scoped names without the `@`. */
export const PACKAGE_NAME: RegExp = /^[a-z0-9][a-z0-9_-]{0,63}\/[a-z0-9][a-z0-9._-]{0,99}$/;
/** What {@linkcode PACKAGE_NAME} means, for messages. */
export const PACKAGE_NAME_RULE =
  `"scope/name" (lowercase letters, digits, "-", "_"; scope at most 64, name at most 100 characters)`;
/** File names inside an artifact. */
const FILE_NAME = /^[A-Za-z0-9._-]{1,100}$/;
/** Largest artifact (sum of its files) a build writes or a registry accepts, bytes. */
export const MAX_ARTIFACT_BYTES = 25 * 1024 * 1024;
/** The manifest format this code writes and reads. */
export const MANIFEST_SCHEMA = 1;

const grant = z.union([z.boolean(), z.array(z.string().min(1))]);

/** Deno permission names a module may ask for (the tenant's config grants them). */
export const requestedPermissionsSchema = z.strictObject({
  read: grant.optional(),
  write: grant.optional(),
  net: grant.optional(),
  env: grant.optional(),
  run: grant.optional(),
  ffi: grant.optional(),
  sys: grant.optional(),
  import: grant.optional(),
});

/** Checks `scope/name`; returns an error message or undefined. */
export function checkPackageName(name: string): string | undefined {
  return PACKAGE_NAME.test(name)
    ? undefined
    : `${JSON.stringify(name)} is not a package name (expected ${PACKAGE_NAME_RULE})`;
}

/** Checks a semver version (`1.2.3`, `1.0.0-beta.1`); returns an error message or undefined. */
export function checkVersion(version: string): string | undefined {
  return validSemver(version) === version && version.length <= 64
    ? undefined
    : `${JSON.stringify(version)} is not a version (expected semver like "1.2.3")`;
}

const fileEntry = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
  size: z.number().int().min(0),
});

/** The shape of `manifest.json`. */
export const manifestSchema = z.strictObject({
  schema: z.literal(MANIFEST_SCHEMA),
  name: z.string().refine((n) => !checkPackageName(n), {
    error: (i) => checkPackageName(String(i.input)),
  }),
  version: z.string().refine((v) => !checkVersion(v), {
    error: (i) => checkVersion(String(i.input)),
  }),
  entry: z.string().regex(FILE_NAME),
  files: z.record(z.string().regex(FILE_NAME), fileEntry),
  size: z.number().int().min(0),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  permissions: requestedPermissionsSchema,
  bindings: z.strictObject({ kv: z.array(z.string()) }),
  crons: z.array(z.string()),
  builtAt: z.string(),
  signature: z.strictObject({ key: z.string(), value: z.string() }).optional(),
});

/** A parsed `manifest.json`. */
export type Manifest = z.output<typeof manifestSchema>;

/** `name@version` of a manifest, the name artifacts go by in messages. */
export function artifactId(m: { name: string; version: string }): string {
  return `${m.name}@${m.version}`;
}

/**
 * Parses and validates manifest JSON text. `label` names the artifact in errors.
 *
 * @example
 * ```ts ignore
 * import { parseManifest } from "./manifest.ts";
 * const m = parseManifest(await Deno.readTextFile("dist/manifest.json"), "dist");
 * console.log(m.name, m.version, m.files["module.js"].sha256);
 * ```
 */
export function parseManifest(text: string, label: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkyError(
      "ERR_BUNDLE_INVALID",
      `artifact ${label}: manifest.json is not JSON (${(err as Error).message})`,
    );
  }
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
    throw new WorkyError(
      "ERR_BUNDLE_INVALID",
      `artifact ${label}: manifest.json: ${where}${issue.message}`,
    );
  }
  const m = result.data;
  if (!m.files[m.entry]) {
    throw new WorkyError(
      "ERR_BUNDLE_INVALID",
      `artifact ${label}: manifest.json: entry ${JSON.stringify(m.entry)} is not one of its files`,
    );
  }
  return m;
}

/** The bytes the signature covers: canonical JSON of the manifest without `signature`. */
export function signedPayload(m: Manifest): Uint8Array<ArrayBuffer> {
  const { signature: _, ...rest } = m;
  return new TextEncoder().encode(canonicalJson(rest));
}

/** sha256 of the canonical JSON of `files`: the content identity of an artifact. */
export function filesDigest(files: Manifest["files"]): Promise<string> {
  return sha256Hex(canonicalJson(files));
}

/** Manifest JSON as written to disk: 2-space indent, keys in a fixed order, newline. */
export function formatManifest(m: Manifest): string {
  return `${JSON.stringify(JSON.parse(canonicalJson(m)), null, 2)}\n`;
}
