import { Command } from "@commander-js/extra-typings";
import { join } from "node:path";
import { buildArtifact } from "../../runtime/artifact/build.ts";
import { type Artifact, readArtifactDir } from "../../runtime/artifact/artifact.ts";
import { artifactId } from "../../runtime/artifact/manifest.ts";
import { signManifest } from "../../runtime/artifact/signing.ts";
import { stopBundler } from "../../runtime/bundler.ts";
import { publishRemote } from "../../control-plane/registry/client.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { loadKey, parseUrl, requireTokenArg } from "../_args.ts";
import { note, step } from "../_progress.ts";

async function isArtifactDir(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(dir, "manifest.json"))).isFile;
  } catch {
    return false;
  }
}

/** `worky publish`: build (or take a built artifact), sign, upload. */
export const publishCommand = new Command("publish")
  .description("publish a project (built and signed here) or a built artifact folder to a registry")
  .argument("[dir]", "project folder or artifact folder", ".")
  .requiredOption("--registry <url>", "the control plane that hosts the registry", parseUrl)
  .option("--token <token>", "API token with scope publish (or WORKY_TOKEN)")
  .option(
    "--key <file>",
    "signing key (or WORKY_SIGNING_KEY); required unless the artifact is signed",
  )
  .option("--tag <tag>", "dist-tag to point at this version", "latest")
  .addHelpText(
    "after",
    "\nExample:\n  worky publish examples/hello --registry http://127.0.0.1:8787 --token $WORKY_TOKEN --key worky-key.json",
  )
  .action(async (dir, opts) => {
    const token = requireTokenArg(opts.token, "publish");
    const key = await loadKey(opts.key);
    let artifact: Artifact;
    if (await isArtifactDir(dir)) {
      artifact = await readArtifactDir(dir);
      if (key) artifact = { ...artifact, manifest: await signManifest(artifact.manifest, key) };
    } else {
      if (!key) {
        throw new WorkyError(
          "ERR_BAD_REQUEST",
          `publish ${dir}: a signing key is needed to build and sign it (pass --key or set WORKY_SIGNING_KEY)`,
        );
      }
      try {
        artifact = (await step(`bundling ${dir}`, () => buildArtifact(dir, { key }))).artifact;
      } finally {
        await stopBundler();
      }
    }
    if (!artifact.manifest.signature) {
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `artifact ${artifactId(artifact.manifest)} in ${dir} is unsigned (pass --key to sign it)`,
      );
    }
    const result = await step(
      `uploading ${artifactId(artifact.manifest)} to ${opts.registry}`,
      () => publishRemote({ url: opts.registry, token }, artifact, opts.tag),
      (r) => `published ${r.name}@${r.version} (tag ${opts.tag})`,
    );
    note(`digest ${result.digest}`);
    console.log(`${result.name}@${result.version}`);
  });
