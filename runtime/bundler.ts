/**
 * Bundles a tenant module with esbuild: TypeScript, npm imports (resolved from
 * node_modules like Node would), JSON and WebAssembly, into one ES module with
 * an inline source map, so stack traces name the tenant's own files and lines.
 */
import * as esbuild from "esbuild";
import { WorkyError } from "./errors.ts";

export interface Bundle {
  /** ES module source, inline source map included. */
  code: string;
  /** Absolute paths of every local file that went into the bundle (for watching). */
  inputs: string[];
  /** sha256 of `code`, hex. */
  hash: string;
}

/** Module ids the bundle leaves to the runtime. */
const EXTERNAL = ["node:*"];

/**
 * Bundles `entry` (absolute path) into one ES module.
 *
 * @example
 * ```ts
 * import { bundleModule } from "./bundler.ts";
 * const bundle = await bundleModule("/abs/path/examples/hello/mod.ts");
 * console.log(bundle.hash, bundle.inputs.length);
 * ```
 */
export async function bundleModule(entry: string): Promise<Bundle> {
  let result: esbuild.BuildResult<{ write: false; metafile: true }>;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "esnext",
      conditions: ["worker", "workerd", "deno", "browser"],
      mainFields: ["module", "browser", "main"],
      external: EXTERNAL,
      sourcemap: "inline",
      sourcesContent: true,
      metafile: true,
      logLevel: "silent",
      loader: { ".wasm": "binary", ".json": "json", ".txt": "text" },
      outdir: "/", // only used to name the output; nothing is written
    });
  } catch (err) {
    const failure = err as esbuild.BuildFailure;
    const first = failure.errors?.[0];
    const where = first?.location
      ? `${first.location.file}:${first.location.line}:${first.location.column}: `
      : "";
    throw new WorkyError(
      "ERR_BUNDLE_INVALID",
      `cannot bundle ${entry}: ${where}${first?.text ?? String(err)}` +
        (failure.errors && failure.errors.length > 1 ? ` (+${failure.errors.length - 1} more)` : ""),
    );
  }
  const out = result.outputFiles.find((f) => f.path.endsWith(".js"));
  if (!out) throw new WorkyError("ERR_INTERNAL", `esbuild produced no JavaScript for ${entry}`);
  const cwd = Deno.cwd();
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.includes(":"))
    .map((p) => p.startsWith("/") ? p : `${cwd}/${p}`);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(out.text));
  const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return { code: out.text, inputs, hash };
}

/** Stops esbuild's service process so the host can exit. */
export function stopBundler(): Promise<void> {
  return esbuild.stop();
}
