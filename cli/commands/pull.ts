import { Command } from "@commander-js/extra-typings";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { pullRemote } from "../../control-plane/registry/client.ts";
import { ArtifactStore } from "../../control-plane/registry/artifact_store.ts";
import { pullCacheDir } from "../../control-plane/registry/plane.ts";
import { artifactId } from "../../runtime/artifact/manifest.ts";
import { parseRefArg, parseUrl } from "../_args.ts";
import { note, step } from "../_progress.ts";

/** `worky pull`: download, verify, cache. */
export const pullCommand = new Command("pull")
  .description("download an artifact, verify its hashes and signature, store it in the local cache")
  .argument("<ref>", "scope/name@range (a semver range or a dist-tag; default latest)", parseRefArg)
  .requiredOption("--registry <url>", "the control plane that hosts the registry", parseUrl)
  .option("-c, --config <file>", "the config whose trusted keys and data dir to use", "worky.toml")
  .addHelpText(
    "after",
    "\nExample:\n  worky pull acme/api@^1.2 --registry http://10.0.0.5:8787 --config worky.toml",
  )
  .action(async (ref, opts) => {
    const config = await loadConfig(opts.config);
    const trusted = config.registry?.trustedKeys ?? [];
    const artifact = await step(
      `pulling ${ref} from ${opts.registry}`,
      () => pullRemote({ url: opts.registry }, ref, trusted),
      (a) => `verified ${artifactId(a.manifest)} (signed by ${a.manifest.signature?.key})`,
    );
    const path = await new ArtifactStore({ cacheDirs: [pullCacheDir(config)] }).put(artifact);
    note(`stored in ${path}`);
    console.log(artifactId(artifact.manifest));
  });
