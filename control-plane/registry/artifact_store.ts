/**
 * Where a control plane finds artifacts to run: its own registry, and local cache folders
 * (`worky pull` writes `<data_dir>/artifacts/<scope>/<name>/<version>/`; a compiled binary
 * adds its embedded folder). Lookups merge them; nothing here is trusted until verified.
 *
 * @module
 */
import { join } from "node:path";
import { WorkyError } from "../../runtime/errors.ts";
import {
  type Artifact,
  readArtifactDir,
  writeArtifactDir,
} from "../../runtime/artifact/artifact.ts";
import { valid as validSemver } from "semver";
import { type PackageRef, pickVersion, type Registry } from "./registry.ts";

/** Options of {@linkcode ArtifactStore}. */
export interface ArtifactStoreOptions {
  /** The control plane's own registry, if any. */
  registry?: Registry;
  /** Cache folders, searched in order; the first is where `put` writes. */
  cacheDirs: string[];
}

export class ArtifactStore {
  readonly #registry?: Registry;
  readonly cacheDirs: string[];

  constructor(opts: ArtifactStoreOptions) {
    this.#registry = opts.registry;
    this.cacheDirs = opts.cacheDirs;
  }

  async #cachedVersions(name: string): Promise<string[]> {
    const out: string[] = [];
    for (const dir of this.cacheDirs) {
      try {
        for await (const e of Deno.readDir(join(dir, name))) {
          if (e.isDirectory && validSemver(e.name) === e.name) out.push(e.name);
        }
      } catch { /* no such folder */ }
    }
    return out;
  }

  /** Resolves a range or tag (tags come from the registry only). */
  async resolve(ref: PackageRef): Promise<string> {
    let versions = await this.#cachedVersions(ref.name);
    let tags: Record<string, string> = {};
    if (this.#registry) {
      try {
        const p = await this.#registry.package(ref.name);
        versions = [...new Set([...versions, ...p.versions])];
        tags = p.tags;
      } catch (err) {
        if (!(err instanceof WorkyError && err.code === "ERR_NOT_FOUND")) throw err;
      }
    }
    if (!versions.length) {
      throw new WorkyError(
        "ERR_NOT_FOUND",
        `no artifact of ${ref.name} here (not in this registry nor pulled into ${
          this.cacheDirs.join(", ")
        }; run "worky pull ${ref.name}@${ref.range} --registry URL")`,
      );
    }
    return pickVersion(ref, versions, tags);
  }

  /** The artifact `name@version`, unverified. */
  async get(name: string, version: string): Promise<Artifact> {
    for (const dir of this.cacheDirs) {
      const path = join(dir, name, version);
      try {
        await Deno.stat(join(path, "manifest.json"));
      } catch {
        continue;
      }
      return await readArtifactDir(path);
    }
    if (this.#registry) return await this.#registry.artifact(name, version);
    throw new WorkyError("ERR_NOT_FOUND", `artifact ${name}@${version} is not here`);
  }

  /** Writes a (verified) artifact into the first cache folder; returns its folder. */
  async put(artifact: Artifact): Promise<string> {
    const m = artifact.manifest;
    const path = join(this.cacheDirs[0], m.name, m.version);
    const tmp = `${path}.tmp-${crypto.randomUUID()}`;
    await writeArtifactDir(tmp, artifact);
    await Deno.remove(path, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, path);
    return path;
  }
}
