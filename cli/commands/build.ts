import { Command } from "@commander-js/extra-typings";
import { join } from "node:path";
import { buildArtifact } from "../../runtime/artifact/build.ts";
import { writeArtifactDir } from "../../runtime/artifact/artifact.ts";
import { artifactId } from "../../runtime/artifact/manifest.ts";
import { stopBundler } from "../../runtime/bundler.ts";
import { loadKey } from "../_args.ts";
import { note, step, warn } from "../_progress.ts";

/** `worky build`: project or module → artifact folder. */
export const buildCommand = new Command("build")
  .description(
    "bundle a tenant module into a signed artifact: module.js, module.js.map, manifest.json",
  )
  .argument("<target>", "a project folder (with worky.json) or a module file")
  .option("-o, --out <dir>", "artifact folder (default: <project>/dist)")
  .option("--name <scope/name>", "package name (overrides worky.json)")
  .option("--pkg-version <semver>", "version (overrides worky.json)")
  .option("--key <file>", 'signing key from "worky keygen" (or WORKY_SIGNING_KEY)')
  .addHelpText(
    "after",
    "\nExample:\n  worky build examples/hello --name acme/hello --pkg-version 1.0.0 --key worky-key.json -o dist/hello\n" +
      "\nSOURCE_DATE_EPOCH (seconds) sets builtAt, making the manifest byte-for-byte reproducible.",
  )
  .action(async (target, opts) => {
    const key = await loadKey(opts.key);
    try {
      const { artifact, root } = await step(
        `bundling ${target}`,
        () => buildArtifact(target, { name: opts.name, version: opts.pkgVersion, key }),
        (r) => `bundled ${artifactId(r.artifact.manifest)} (${r.artifact.manifest.size} bytes)`,
      );
      const out = opts.out ?? join(root, "dist");
      await writeArtifactDir(out, artifact);
      if (!key) {
        warn('the artifact is unsigned: servers refuse it (pass --key; see "worky keygen")');
      }
      note(`wrote ${out} (digest ${artifact.manifest.digest})`);
      console.log(out);
    } finally {
      await stopBundler();
    }
  });
