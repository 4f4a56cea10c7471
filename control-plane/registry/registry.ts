/**
 * The module registry of a control plane: metadata in libSQL (`schema_registry.ts`), file
 * bytes as content-addressed blobs ({@linkcode BlobStore}). Versions are immutable (the
 * `(name, version)` primary key decides between concurrent publishes); dist-tags move.
 *
 * @module
 */
import { and, eq } from "drizzle-orm";
import { maxSatisfying, validRange } from "semver";
import type { Database } from "../storage/database.ts";
import { registryTags, registryVersions } from "../storage/schema_registry.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { type Artifact, verifyArtifact } from "../../runtime/artifact/artifact.ts";
import {
  artifactId,
  checkPackageName,
  checkVersion,
  formatManifest,
  parseManifest,
} from "../../runtime/artifact/manifest.ts";
import { actsFor, allows, type TokenInfo } from "../auth/tokens.ts";
import { BlobStore } from "./blob_store.ts";

/** Dist-tag names: a letter, then letters, digits, `-`, `.`, `_`; never a valid range. */
const TAG = /^[a-z][a-z0-9._-]{0,31}$/i;

/** One package in a listing. */
export interface PackageSummary {
  name: string;
  versions: string[];
  tags: Record<string, string>;
}

/** A `name@range` (or `name@tag`, or bare `name` = `latest`) split into parts. */
export interface PackageRef {
  name: string;
  range: string;
}

/**
 * Parses `acme/api@^1.2`, `acme/api@latest` or `acme/api` (= `@latest`).
 *
 * @example
 * ```ts
 * import { parseRef } from "./registry.ts";
 * console.log(parseRef("acme/api@^1.2")); // { name: "acme/api", range: "^1.2" }
 * ```
 */
export function parseRef(text: string): PackageRef {
  const at = text.indexOf("@");
  const name = at === -1 ? text : text.slice(0, at);
  const range = at === -1 ? "latest" : text.slice(at + 1);
  const bad = checkPackageName(name);
  if (bad) throw new WorkyError("ERR_BAD_REQUEST", `"${text}": ${bad}`);
  if (!range || (!TAG.test(range) && validRange(range) === null)) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `"${text}": "${range}" is neither a semver range nor a dist-tag`,
    );
  }
  return { name, range };
}

/** Picks the version a range or tag names among `versions`; throws ERR_NOT_FOUND. */
export function pickVersion(
  ref: PackageRef,
  versions: readonly string[],
  tags: Record<string, string>,
): string {
  const tagged = tags[ref.range];
  if (tagged !== undefined) return tagged;
  const found = validRange(ref.range) === null ? null : maxSatisfying([...versions], ref.range);
  if (!found) {
    const have = versions.length ? `have ${versions.join(", ")}` : "none published";
    throw new WorkyError(
      "ERR_NOT_FOUND",
      `no version of ${ref.name} matches "${ref.range}" (${have})`,
    );
  }
  return found;
}

/** Is `err` SQLite's unique/primary-key violation? */
function isUniqueViolation(err: unknown): boolean {
  for (
    let e = err as { message?: string; code?: string; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  ) {
    if (/UNIQUE constraint failed|SQLITE_CONSTRAINT/.test(`${e.code ?? ""} ${e.message ?? ""}`)) {
      return true;
    }
  }
  return false;
}

export class Registry {
  readonly blobs: BlobStore;
  readonly #database: Database;
  readonly #now: () => number;

  constructor(database: Database, blobDir: string, now: () => number = Date.now) {
    this.#database = database;
    this.blobs = new BlobStore(blobDir);
    this.#now = now;
  }

  /**
   * Verifies and stores an artifact as `name@version`, then points `tag` at it.
   * Fails with ERR_CONFLICT when the version exists, ERR_FORBIDDEN when a tenant token
   * publishes outside its scope, ERR_BUNDLE_* when the artifact doesn't verify.
   */
  async publish(
    artifact: Artifact,
    by: TokenInfo,
    tag = "latest",
  ): Promise<{ name: string; version: string; digest: string }> {
    const m = artifact.manifest;
    const id = artifactId(m);
    if (!allows(by, "publish")) {
      throw new WorkyError(
        "ERR_FORBIDDEN",
        `token ${by.id} has scope "${by.scope}" and can't publish`,
      );
    }
    const scope = m.name.slice(0, m.name.indexOf("/"));
    if (!actsFor(by, scope)) {
      throw new WorkyError(
        "ERR_FORBIDDEN",
        `token ${by.id} acts for tenant "${by.tenant}" and can't publish ${m.name} (scope "${scope}")`,
      );
    }
    if (!TAG.test(tag)) throw new WorkyError("ERR_BAD_REQUEST", `"${tag}" is not a dist-tag name`);
    // a registry accepts any valid signature; whether a key is trusted is each server's call
    await verifyArtifact(artifact, { trustedKeys: m.signature ? [m.signature.key] : [] });
    for (const bytes of Object.values(artifact.files)) await this.blobs.put(bytes);
    try {
      await this.#database.db.insert(registryVersions).values({
        name: m.name,
        version: m.version,
        manifest: formatManifest(m),
        digest: m.digest,
        size: m.size,
        signer: m.signature!.key,
        publishedAt: this.#now(),
        publishedBy: by.id,
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new WorkyError(
          "ERR_CONFLICT",
          `${id} is already published; versions are immutable (publish a new version)`,
        );
      }
      throw err;
    }
    await this.setTag(m.name, tag, m.version);
    return { name: m.name, version: m.version, digest: m.digest };
  }

  /** Points a dist-tag at an existing version. */
  async setTag(name: string, tag: string, version: string): Promise<void> {
    if (!TAG.test(tag)) throw new WorkyError("ERR_BAD_REQUEST", `"${tag}" is not a dist-tag name`);
    const exists = await this.#database.db.select({ v: registryVersions.version }).from(
      registryVersions,
    )
      .where(and(eq(registryVersions.name, name), eq(registryVersions.version, version)));
    if (!exists.length) {
      throw new WorkyError("ERR_NOT_FOUND", `${name}@${version} is not published`);
    }
    const updatedAt = this.#now();
    await this.#database.db.insert(registryTags).values({ name, tag, version, updatedAt })
      .onConflictDoUpdate({
        target: [registryTags.name, registryTags.tag],
        set: { version, updatedAt },
      });
  }

  /** Every package with its versions and tags. */
  async list(): Promise<PackageSummary[]> {
    const rows = await this.#database.db.select({
      name: registryVersions.name,
      version: registryVersions.version,
    })
      .from(registryVersions).orderBy(registryVersions.name, registryVersions.publishedAt);
    const tags = await this.#database.db.select().from(registryTags);
    const out = new Map<string, PackageSummary>();
    for (const r of rows) {
      const p = out.get(r.name) ?? { name: r.name, versions: [], tags: {} };
      p.versions.push(r.version);
      out.set(r.name, p);
    }
    for (const t of tags) {
      const p = out.get(t.name);
      if (p) p.tags[t.tag] = t.version;
    }
    return [...out.values()];
  }

  /** One package; ERR_NOT_FOUND when nothing is published under `name`. */
  async package(name: string): Promise<PackageSummary> {
    const bad = checkPackageName(name);
    if (bad) throw new WorkyError("ERR_BAD_REQUEST", bad);
    const rows = await this.#database.db.select({ version: registryVersions.version }).from(
      registryVersions,
    )
      .where(eq(registryVersions.name, name)).orderBy(registryVersions.publishedAt);
    if (!rows.length) {
      throw new WorkyError("ERR_NOT_FOUND", `no package named ${name} in this registry`);
    }
    const tags = await this.#database.db.select().from(registryTags).where(
      eq(registryTags.name, name),
    );
    return {
      name,
      versions: rows.map((r) => r.version),
      tags: Object.fromEntries(tags.map((t) => [t.tag, t.version])),
    };
  }

  /** Resolves a range or tag to a version. */
  async resolve(ref: PackageRef): Promise<string> {
    const p = await this.package(ref.name);
    return pickVersion(ref, p.versions, p.tags);
  }

  /** The published manifest text of `name@version`. */
  async manifestText(name: string, version: string): Promise<string> {
    const bad = checkPackageName(name) ?? checkVersion(version);
    if (bad) throw new WorkyError("ERR_BAD_REQUEST", bad);
    const rows = await this.#database.db.select({ manifest: registryVersions.manifest }).from(
      registryVersions,
    )
      .where(and(eq(registryVersions.name, name), eq(registryVersions.version, version)));
    if (!rows.length) throw new WorkyError("ERR_NOT_FOUND", `${name}@${version} is not published`);
    return rows[0].manifest;
  }

  /** The artifact `name@version` (not verified: callers verify against their trusted keys). */
  async artifact(name: string, version: string): Promise<Artifact> {
    const manifest = parseManifest(await this.manifestText(name, version), `${name}@${version}`);
    const files: Record<string, Uint8Array> = {};
    for (const [file, entry] of Object.entries(manifest.files)) {
      const bytes = await this.blobs.get(entry.sha256);
      if (bytes) files[file] = bytes;
    }
    return { manifest, files };
  }
}
