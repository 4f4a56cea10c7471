/**
 * An artifact in memory (manifest + file bytes), reading and writing artifact folders,
 * and the one verification every loader runs before code is deployed.
 *
 * @module
 */
import { join } from "node:path";
import { WorkyError } from "../errors.ts";
import { sha256Hex, toBase64 } from "./_encoding.ts";
import {
  artifactId,
  filesDigest,
  formatManifest,
  type Manifest,
  MAX_ARTIFACT_BYTES,
  parseManifest,
} from "./manifest.ts";
import { verifyManifestSignature } from "./signing.ts";

/** A built artifact: its manifest and the bytes of every file it lists. */
export interface Artifact {
  manifest: Manifest;
  files: Record<string, Uint8Array>;
}

/** Options of {@linkcode verifyArtifact}. */
export interface VerifyOptions {
  /** Public keys (`ed25519:…`) whose signatures are accepted. */
  trustedKeys: readonly string[];
  /** Names the artifact in errors (default `name@version`). */
  label?: string;
}

/**
 * Checks every file against the manifest (present, size, sha256, nothing extra, total size,
 * digest) and the signature against the trusted keys. Throws `ERR_BUNDLE_TAMPERED` (or
 * `ERR_BUNDLE_INVALID`) naming the artifact and what is wrong.
 *
 * @example
 * ```ts ignore
 * import { readArtifactDir, verifyArtifact } from "./artifact.ts";
 * const artifact = await readArtifactDir("dist/acme-api@1.2.0");
 * await verifyArtifact(artifact, { trustedKeys: ["ed25519:…"] });
 * ```
 */
export async function verifyArtifact(artifact: Artifact, opts: VerifyOptions): Promise<void> {
  const m = artifact.manifest;
  const label = opts.label ?? artifactId(m);
  let total = 0;
  for (const [name, entry] of Object.entries(m.files)) {
    const bytes = artifact.files[name];
    if (!bytes) {
      throw new WorkyError("ERR_BUNDLE_TAMPERED", `artifact ${label}: file ${name} is missing`);
    }
    const actual = await sha256Hex(bytes);
    if (bytes.length !== entry.size || actual !== entry.sha256) {
      throw new WorkyError(
        "ERR_BUNDLE_TAMPERED",
        `artifact ${label}: file ${name} does not match manifest.json (sha256 ${actual}, expected ${entry.sha256})`,
      );
    }
    total += bytes.length;
  }
  for (const name of Object.keys(artifact.files)) {
    if (!m.files[name]) {
      throw new WorkyError(
        "ERR_BUNDLE_TAMPERED",
        `artifact ${label}: file ${name} is not listed in manifest.json`,
      );
    }
  }
  if (total !== m.size || total > MAX_ARTIFACT_BYTES) {
    throw new WorkyError(
      "ERR_BUNDLE_TAMPERED",
      `artifact ${label}: size ${total} bytes does not match manifest.json (${m.size}) or exceeds ${MAX_ARTIFACT_BYTES}`,
    );
  }
  if ((await filesDigest(m.files)) !== m.digest) {
    throw new WorkyError(
      "ERR_BUNDLE_TAMPERED",
      `artifact ${label}: manifest.json digest does not match its files`,
    );
  }
  await verifyManifestSignature(m, opts.trustedKeys, label);
}

/** Reads an artifact folder (`manifest.json` and the files it lists). */
export async function readArtifactDir(dir: string): Promise<Artifact> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "manifest.json"));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no manifest.json" : (err as Error).message;
    throw new WorkyError(
      "ERR_BUNDLE_INVALID",
      `artifact ${dir}: ${why} (build it with "worky build")`,
    );
  }
  const manifest = parseManifest(text, dir);
  const files: Record<string, Uint8Array> = {};
  for (const name of Object.keys(manifest.files)) {
    try {
      files[name] = await Deno.readFile(join(dir, name));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      // left out: verifyArtifact reports it as missing
    }
  }
  return { manifest, files };
}

/** Writes an artifact folder: every file, then `manifest.json` last. */
export async function writeArtifactDir(dir: string, artifact: Artifact): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(artifact.files)) {
    await Deno.writeFile(join(dir, name), bytes);
  }
  await Deno.writeTextFile(join(dir, "manifest.json"), formatManifest(artifact.manifest));
}

/**
 * The module source a worker loads: the entry file, with its source map inlined so stack
 * traces name the original files (tenant code is imported from a `blob:` URL, where a
 * relative `sourceMappingURL` can't resolve).
 */
export function loadableCode(artifact: Artifact): string {
  const m = artifact.manifest;
  const code = new TextDecoder().decode(artifact.files[m.entry]);
  const map = artifact.files[`${m.entry}.map`];
  if (!map) return code;
  const stripped = code.replace(/\n\/\/# sourceMappingURL=[^\n]*\n?$/, "\n");
  return `${stripped}//# sourceMappingURL=data:application/json;base64,${toBase64(map)}\n`;
}
