/**
 * Content-addressed blobs on disk: `<root>/<aa>/<sha256>`. A blob is written to a temp
 * file and renamed into place, so a reader never sees half a blob, and writing the same
 * bytes twice (or concurrently) is harmless.
 *
 * @module
 */
import { join } from "node:path";
import { WorkyError } from "../../runtime/errors.ts";
import { sha256Hex } from "../../runtime/artifact/_encoding.ts";
import { writeFileAtomic } from "../../runtime/atomic_file.ts";

/** Blobs under one folder, named by their sha256. */
export class BlobStore {
  constructor(readonly root: string) {}

  #path(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `"${sha256}" is not a sha256 (64 lowercase hex digits)`,
      );
    }
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  /**
   * Stores bytes; returns their sha256.
   *
   * @example
   * ```ts ignore
   * const store = new BlobStore("/srv/worky/.worky/registry/blobs");
   * const hash = await store.put(new TextEncoder().encode("hi"));
   * console.log((await store.get(hash))?.length); // 2
   * ```
   */
  async put(bytes: Uint8Array): Promise<string> {
    const hash = await sha256Hex(bytes);
    const path = this.#path(hash);
    if (await this.has(hash)) return hash;
    await Deno.mkdir(join(this.root, hash.slice(0, 2)), { recursive: true });
    await writeFileAtomic(path, bytes);
    return hash;
  }

  async has(sha256: string): Promise<boolean> {
    try {
      return (await Deno.stat(this.#path(sha256))).isFile;
    } catch {
      return false;
    }
  }

  /** The blob's bytes, or undefined when absent. */
  async get(sha256: string): Promise<Uint8Array | undefined> {
    try {
      return await Deno.readFile(this.#path(sha256));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
  }
}
