/**
 * `worky build`: a tenant project → an artifact (module.js, module.js.map, manifest.json).
 *
 * ## Where the metadata comes from
 *
 * A `worky.json` in the project folder (or next to the module file given):
 *
 * ```json
 * {
 *   "name": "acme/api",
 *   "version": "1.2.0",
 *   "entry": "mod.ts",
 *   "permissions": { "net": ["api.example.com:443"] },
 *   "kv": ["CACHE"],
 *   "crons": ["0 * * * *"]
 * }
 * ```
 *
 * `name` and `version` may also be given (or overridden) as options. `entry` defaults to the
 * module given, else `mod.ts`. `permissions`, `kv` and `crons` are what the module asks for;
 * the operator's `worky.toml` grants them.
 *
 * ## Reproducibility
 *
 * The bundle and its map are byte-for-byte the same for the same sources (map paths are
 * relative to the project folder), so the file hashes and `digest` are too. `builtAt` comes
 * from `SOURCE_DATE_EPOCH` (seconds) when set, else the clock; Ed25519 signatures are
 * deterministic, so with `SOURCE_DATE_EPOCH` set the whole manifest is byte-for-byte
 * reproducible as well.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { Cron } from "croner";
import { z } from "zod";
import { WorkyError } from "../errors.ts";
import { bundleModule } from "../bundler.ts";
import { sha256Hex } from "./_encoding.ts";
import type { Artifact } from "./artifact.ts";
import {
  checkPackageName,
  checkVersion,
  filesDigest,
  type Manifest,
  MANIFEST_SCHEMA,
  MAX_ARTIFACT_BYTES,
  requestedPermissionsSchema,
} from "./manifest.ts";
import { type SigningKey, signManifest } from "./signing.ts";

/** The project file read by {@linkcode buildArtifact}. */
export const PROJECT_FILE = "worky.json";

const projectSchema = z.strictObject({
  name: z.string().optional(),
  version: z.string().optional(),
  entry: z.string().min(1).optional(),
  permissions: requestedPermissionsSchema.default({}),
  kv: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)).default([]),
  crons: z.array(z.string()).default([]),
});

/** Options of {@linkcode buildArtifact}. */
export interface BuildOptions {
  /** Overrides `worky.json` `name`. */
  name?: string;
  /** Overrides `worky.json` `version`. */
  version?: string;
  /** Used when neither `name` nor `worky.json` names the package. */
  fallbackName?: string;
  /** Used when neither `version` nor `worky.json` gives a version. */
  fallbackVersion?: string;
  /** Signs the manifest when given. */
  key?: SigningKey;
  /** Build time; default `SOURCE_DATE_EPOCH` or now. */
  builtAt?: Date;
}

/** The result of {@linkcode buildArtifact}. */
export interface BuildResult {
  artifact: Artifact;
  /** The project folder. */
  root: string;
  /** Local files that went into the bundle. */
  inputs: string[];
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `${path} does not exist (expected a project folder or a module file)`,
      );
    }
    throw err;
  }
}

async function readProject(root: string): Promise<z.output<typeof projectSchema>> {
  const path = join(root, PROJECT_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return projectSchema.parse({});
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkyError("ERR_CONFIG_INVALID", `${path}: not JSON (${(err as Error).message})`);
  }
  const result = projectSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${path}: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  return result.data;
}

/** The build time: `SOURCE_DATE_EPOCH` (seconds since the epoch) when set, else now. */
function defaultBuildTime(): Date {
  let epoch: string | undefined;
  try {
    epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  } catch {
    epoch = undefined;
  }
  if (epoch === undefined || epoch === "") return new Date();
  if (!/^\d+$/.test(epoch)) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `SOURCE_DATE_EPOCH=${JSON.stringify(epoch)} is not a number of seconds`,
    );
  }
  return new Date(Number(epoch) * 1000);
}

/**
 * Bundles a project folder or module file into an artifact (in memory; write it with
 * `writeArtifactDir`).
 *
 * @example
 * ```ts ignore
 * import { buildArtifact } from "./build.ts";
 * import { writeArtifactDir } from "./artifact.ts";
 * const { artifact } = await buildArtifact("examples/hello", { name: "acme/hello", version: "1.0.0" });
 * await writeArtifactDir("dist/hello", artifact);
 * ```
 */
export async function buildArtifact(target: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const abs = resolve(target);
  const dir = await isDir(abs);
  const root = dir ? abs : dirname(abs);
  const project = await readProject(root);
  const name = opts.name ?? project.name ?? opts.fallbackName;
  const version = opts.version ?? project.version ?? opts.fallbackVersion;
  const where = `${root}/${PROJECT_FILE}`;
  if (!name) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `no package name: set "name" in ${where} or pass --name scope/name`,
    );
  }
  if (!version) {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `no version: set "version" in ${where} or pass --version 1.0.0`,
    );
  }
  const badName = checkPackageName(name);
  if (badName) throw new WorkyError("ERR_BAD_REQUEST", badName);
  const badVersion = checkVersion(version);
  if (badVersion) throw new WorkyError("ERR_BAD_REQUEST", badVersion);
  for (const [i, pattern] of project.crons.entries()) {
    try {
      new Cron(pattern, { paused: true }).stop();
    } catch (err) {
      throw new WorkyError(
        "ERR_CONFIG_INVALID",
        `${where}: crons[${i}]: ${JSON.stringify(pattern)} is not a cron pattern (${
          (err as Error).message
        })`,
      );
    }
  }
  const entry = dir ? join(root, project.entry ?? "mod.ts") : abs;
  try {
    await Deno.stat(entry);
  } catch {
    throw new WorkyError(
      "ERR_BAD_REQUEST",
      `entry module ${entry} does not exist (set "entry" in ${where})`,
    );
  }

  const bundle = await bundleModule(entry, { sourcemap: "external", root });
  const enc = new TextEncoder();
  const files: Record<string, Uint8Array> = {
    "module.js": enc.encode(bundle.code),
    "module.js.map": enc.encode(bundle.map ?? ""),
  };
  const entries: Manifest["files"] = {};
  let size = 0;
  for (const [file, bytes] of Object.entries(files)) {
    entries[file] = { sha256: await sha256Hex(bytes), size: bytes.length };
    size += bytes.length;
  }
  if (size > MAX_ARTIFACT_BYTES) {
    throw new WorkyError(
      "ERR_PAYLOAD_TOO_LARGE",
      `${
        basename(entry)
      }: the bundle is ${size} bytes, more than the ${MAX_ARTIFACT_BYTES}-byte artifact limit`,
    );
  }
  let manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    name,
    version,
    entry: "module.js",
    files: entries,
    size,
    digest: await filesDigest(entries),
    permissions: project.permissions,
    bindings: { kv: project.kv },
    crons: project.crons,
    builtAt: (opts.builtAt ?? defaultBuildTime()).toISOString(),
  };
  if (opts.key) manifest = await signManifest(manifest, opts.key);
  return { artifact: { manifest, files }, root, inputs: bundle.inputs };
}
