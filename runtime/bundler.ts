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
  /**
   * The source map (JSON text): sources as absolute file URLs for inline bundles, relative to
   * `root` for external ones.
   */
  map: string;
  /** Absolute paths of every local file that went into the bundle (for watching). */
  inputs: string[];
  /** sha256 of `code`, hex. */
  hash: string;
}

/** Options of {@linkcode bundleModule}. */
export interface BundleOptions {
  /**
   * `"inline"` (default): the map is a data URL at the end of `code`. `"external"`: the map
   * is returned as `map`, `code` ends with `//# sourceMappingURL=module.js.map`, and source
   * paths in the map are relative to `root` (so the same sources give the same bytes
   * wherever they are).
   */
  sourcemap?: "inline" | "external";
  /** Folder that map source paths are relative to (external maps); default the entry's folder. */
  root?: string;
}

/** Module ids the bundle leaves to the runtime. */
const EXTERNAL = ["node:*"];

/** What `import … from "worky"` / `"cloudflare:workers"` means in a tenant (bundled in). */
const TENANT_API = new URL("./tenant_api.worker.ts", import.meta.url).pathname;
const tenantApiPlugin: esbuild.Plugin = {
  name: "worky-tenant-api",
  setup(build) {
    build.onResolve({ filter: /^(worky|cloudflare:workers)$/ }, () => ({ path: TENANT_API }));
  },
};

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
export async function bundleModule(entry: string, options: BundleOptions = {}): Promise<Bundle> {
  const external = options.sourcemap === "external";
  const root = options.root ?? (entry.slice(0, entry.lastIndexOf("/")) || "/");
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
      plugins: [tenantApiPlugin],
      sourcemap: external ? "linked" : "external",
      sourcesContent: true,
      ...(external ? { absWorkingDir: root, entryNames: "module" } : {}),
      metafile: true,
      logLevel: "silent",
      loader: { ".wasm": "binary", ".json": "json", ".txt": "text" },
      outdir: external ? root : "/", // only used to name the output; nothing is written
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
        (failure.errors && failure.errors.length > 1
          ? ` (+${failure.errors.length - 1} more)`
          : ""),
    );
  }
  const out = result.outputFiles.find((f) => f.path.endsWith(".js"));
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".js.map"));
  if (!out || !mapFile) {
    throw new WorkyError("ERR_INTERNAL", `esbuild produced no JavaScript for ${entry}`);
  }
  let code = out.text;
  let map = mapFile.text;
  if (!external) {
    // Inline: sources relative to the virtual outdir "/" become absolute file URLs, since
    // Deno cannot resolve relative sources against the blob: URL the bundle runs from.
    const parsed = JSON.parse(map) as { sources: string[] };
    parsed.sources = parsed.sources.map((src) => new URL(src, "file:///").href);
    map = JSON.stringify(parsed);
    code = `${code.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n")}` +
      `//# sourceMappingURL=data:application/json;base64,${base64(map)}\n`;
  }
  const cwd = external ? root : Deno.cwd(); // esbuild's metafile paths are relative to this
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.includes(":"))
    .map((p) => decodeURIComponent(new URL(p, `file://${cwd}/`).pathname));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code));
  const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return { code, map, inputs, hash };
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Stops esbuild's service process so the host can exit. */
export function stopBundler(): Promise<void> {
  return esbuild.stop();
}
