/**
 * `worky compile`: one executable that serves a config's tenants, with `deno compile`.
 *
 * Staging (`stageCompile`) writes `<repo>/.worky/compile/<id>/`:
 * - `main.ts`: the entry; imports `cli/compiled_main.ts` and points it at `embedded/`;
 * - `embedded/config.json`: the worky.toml as JSON, each tenant's module rewritten to
 *   `registry:<name>@<version>`, and the signing key's public half trusted;
 * - `embedded/artifacts/<scope>/<name>/<version>/`: every tenant's artifact, signed. Source
 *   modules are built here (signed with `--key`, or a one-off key made for this binary);
 *   `registry:` modules are taken from the local registry / pull cache and verified.
 *
 * Then `deno compile -A --unstable-worker-options --include runtime/bootstrap.worker.ts
 * --include control-plane/storage/migrations --include <stage>/embedded <stage>/main.ts`: the
 * worker bootstrap is loaded with `new Worker(url)` and the migrations are read as files,
 * which deno compile can't see statically, so they are included by name.
 *
 * deno compile needs `denort`, the runtime it copies into the executable; it downloads it
 * from dl.deno.land unless `DENORT_BIN` names a local copy. Without either, compile fails
 * with a message saying so.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseToml } from "smol-toml";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import type { WorkyConfig } from "../../control-plane/config/types.ts";
import { openDatabase } from "../../control-plane/storage/database.ts";
import { createRegistryPlane } from "../../control-plane/registry/plane.ts";
import { isRegistrySpec, REGISTRY_PREFIX } from "../../control-plane/registry/registry_config.ts";
import { parseRef } from "../../control-plane/registry/registry.ts";
import { ArtifactStore } from "../../control-plane/registry/artifact_store.ts";
import { checkGrants } from "../../control-plane/registry/deployer.ts";
import { buildArtifact } from "../../runtime/artifact/build.ts";
import { verifyArtifact } from "../../runtime/artifact/artifact.ts";
import { artifactId } from "../../runtime/artifact/manifest.ts";
import { generateKeyFile, importKeyFile, type SigningKey } from "../../runtime/artifact/signing.ts";
import { stopBundler } from "../../runtime/bundler.ts";
import { MemoryLogger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { loadKey } from "../_args.ts";
import { note, step } from "../_progress.ts";

/** The repository root (where deno.json and node_modules are). */
export const REPO_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/**
 * Files `deno compile` can't find from the entry's static imports: the worker bootstrap
 * (`new Worker(url)`) and the SQL migrations (read from disk by `openDatabase`).
 */
const EXTRA_INCLUDES: readonly string[] = [
  "runtime/bootstrap.worker.ts",
  "control-plane/storage/migrations",
];

/** A staged compile. */
export interface CompileStage {
  /** The staging folder. */
  dir: string;
  /** The generated entry (`<dir>/main.ts`). */
  entry: string;
  /** `--include` paths (absolute). */
  includes: string[];
  /** Tenant → `name@version` embedded. */
  tenants: Record<string, string>;
}

/**
 * Builds (or collects) every tenant's artifact and writes the staging folder.
 *
 * @example
 * ```ts ignore
 * const stage = await stageCompile(await loadConfig("worky.toml"), {});
 * console.log(stage.entry, stage.tenants);
 * ```
 */
export async function stageCompile(
  config: WorkyConfig,
  opts: { key?: SigningKey },
): Promise<CompileStage> {
  const dir = join(REPO_ROOT, ".worky", "compile", crypto.randomUUID().slice(0, 8));
  const embedded = join(dir, "embedded");
  const out = new ArtifactStore({ cacheDirs: [join(embedded, "artifacts")] });
  let key = opts.key;
  if (!key) {
    const file = await generateKeyFile();
    key = await importKeyFile(JSON.stringify(file), "<one-off compile key>");
  }
  const trusted = [...(config.registry?.trustedKeys ?? []), key.publicKey];
  const doc = parseToml(await Deno.readTextFile(config.path)) as {
    server?: Record<string, unknown>;
    registry?: Record<string, unknown>;
    tenants: Record<string, { module: string }>;
  };
  const tenants: Record<string, string> = {};
  const database = await openDatabase(config.server.dbUrl);
  try {
    const local = createRegistryPlane({ config, database, logger: new MemoryLogger() });
    for (const tenant of config.tenants) {
      let artifact;
      const active = await local.deployer.active(tenant.name);
      if (active || isRegistrySpec(tenant.module)) {
        const ref = parseRef(active ? active.ref : tenant.module.slice(REGISTRY_PREFIX.length));
        const version = await local.artifacts.resolve(ref);
        artifact = await local.artifacts.get(ref.name, version);
        await verifyArtifact(artifact, { trustedKeys: trusted });
      } else {
        artifact = (await buildArtifact(tenant.module, {
          fallbackName: `compiled/${tenant.name}`,
          fallbackVersion: "0.0.0",
          key,
        })).artifact;
      }
      checkGrants(artifact.manifest, tenant);
      await out.put(artifact);
      tenants[tenant.name] = artifactId(artifact.manifest);
      doc.tenants[tenant.name].module = `${REGISTRY_PREFIX}${artifactId(artifact.manifest)}`;
    }
  } finally {
    database.close();
    await stopBundler();
  }
  doc.registry = { ...(doc.registry ?? {}), trusted_keys: trusted };
  doc.server = { ...(doc.server ?? {}), data_dir: ".worky" };
  delete doc.server.db_url;
  await Deno.writeTextFile(join(embedded, "config.json"), `${JSON.stringify(doc, null, 2)}\n`);
  const entry = join(dir, "main.ts");
  const rel = relative(dir, join(REPO_ROOT, "cli", "compiled_main.ts"));
  await Deno.writeTextFile(
    entry,
    `// generated by worky compile\nimport { runCompiled } from "./${rel}";\n` +
      `const code = await runCompiled(new URL("./embedded/", import.meta.url), Deno.args);\n` +
      `if (code !== 0) Deno.exit(code);\n`,
  );
  return {
    dir,
    entry,
    includes: [...EXTRA_INCLUDES.map((f) => join(REPO_ROOT, f)), embedded],
    tenants,
  };
}

/** The `deno compile` arguments for a stage. */
function compileArgs(stage: CompileStage, output: string): string[] {
  return [
    "compile",
    "-A",
    "--no-prompt", // it serves tenants in its own process: control-plane/permission_prompts.ts
    "--unstable-worker-options",
    "--no-check",
    ...stage.includes.flatMap((p) => ["--include", p]),
    "-o",
    resolve(output),
    stage.entry,
  ];
}

/** Checks `DENORT_BIN` before running deno compile; returns an error message or undefined. */
async function checkDenort(
  env: { get(k: string): string | undefined } = Deno.env,
): Promise<string | undefined> {
  const bin = env.get("DENORT_BIN");
  if (bin === undefined || bin === "") return undefined;
  try {
    if ((await Deno.stat(bin)).isFile) return undefined;
  } catch { /* below */ }
  return `DENORT_BIN=${bin} is not a file: deno compile needs denort (the Deno runtime binary it builds executables from) for Deno ${Deno.version.deno}`;
}

/** Turns deno compile's failure output into one line; denort problems say so plainly. */
function explainCompileFailure(stderr: string): string {
  // deno colors its output: drop the ANSI escapes
  const plain = stderr.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
  if (/denort|dl\.deno\.land|Setting up base binary/i.test(plain)) {
    return `deno compile needs denort (the Deno ${Deno.version.deno} runtime binary it builds executables from) and could not get it: it downloads it from dl.deno.land, which is unreachable here. Download denort-${Deno.build.target}.zip for Deno ${Deno.version.deno} elsewhere, unzip it, and set DENORT_BIN=/path/to/denort`;
  }
  const line = plain.split("\n").find((l) => /error/i.test(l)) ?? plain.trim().split("\n")[0] ?? "";
  return `deno compile failed: ${line.replace(/^error:\s*/i, "").trim()}`;
}

/** `worky compile`. */
export const compileCommand = new Command("compile")
  .description(
    "build one executable serving the config's tenants (control plane, runtime, artifacts)",
  )
  .option("-c, --config <file>", "the config to embed", "worky.toml")
  .requiredOption("-o, --output <file>", "the executable to write")
  .option(
    "--key <file>",
    "sign source tenants with this key (default: a one-off key trusted by the binary)",
  )
  .option("--keep-stage", "keep the staging folder (.worky/compile/<id>) for inspection")
  .addHelpText(
    "after",
    "\nExample:\n  worky compile --config worky.toml -o dist/worky   # with DENORT_BIN=/path/to/denort offline\n  ./dist/worky --port 8080",
  )
  .action(async (opts) => {
    const config = await loadConfig(opts.config);
    const denort = await checkDenort();
    if (denort) throw new WorkyError("ERR_UNAVAILABLE", denort);
    const key = await loadKey(opts.key);
    const stage = await step(
      `building ${config.tenants.length} tenant artifact(s)`,
      () => stageCompile(config, { key }),
      (s) => `staged ${Object.values(s.tenants).join(", ") || "no tenants"}`,
    );
    try {
      await Deno.mkdir(dirname(resolve(opts.output)), { recursive: true });
      const result = await step(
        `compiling ${opts.output} (deno compile)`,
        () =>
          new Deno.Command(Deno.execPath(), {
            args: compileArgs(stage, opts.output),
            cwd: REPO_ROOT,
            stdout: "piped",
            stderr: "piped",
          }).output(),
      );
      if (!result.success) {
        throw new WorkyError(
          "ERR_UNAVAILABLE",
          explainCompileFailure(new TextDecoder().decode(result.stderr)),
        );
      }
      note(`wrote ${opts.output}; run it with --port N (state goes to ./.worky or --data-dir)`);
      console.log(resolve(opts.output));
    } finally {
      if (!opts.keepStage) await Deno.remove(stage.dir, { recursive: true }).catch(() => {});
    }
  });
