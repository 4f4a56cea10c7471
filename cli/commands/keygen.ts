import { Command } from "@commander-js/extra-typings";
import { generateKeyFile } from "../../runtime/artifact/signing.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { note } from "../_progress.ts";

/** `worky keygen`: a new Ed25519 signing key. */
export const keygenCommand = new Command("keygen")
  .description("make an Ed25519 key pair for signing artifacts (prints the public key)")
  .option(
    "-o, --out <file>",
    "where to write the key file (private: keep it secret)",
    "worky-key.json",
  )
  .option("--force", "overwrite an existing key file")
  .addHelpText(
    "after",
    '\nExample:\n  worky keygen -o ~/.worky/signing-key.json\n  # then trust it in worky.toml:  [registry] trusted_keys = ["ed25519:…"]',
  )
  .action(async (opts) => {
    const file = await generateKeyFile();
    try {
      await Deno.writeTextFile(opts.out, `${JSON.stringify(file, null, 2)}\n`, {
        mode: 0o600,
        createNew: !opts.force,
      });
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        throw new WorkyError(
          "ERR_CONFLICT",
          `${opts.out} already exists (pass --force to overwrite it)`,
        );
      }
      throw new WorkyError(
        "ERR_BAD_REQUEST",
        `cannot write ${opts.out}: ${(err as Error).message}`,
      );
    }
    note(
      `wrote private key ${opts.out} (mode 0600); trust the public key below with [registry] trusted_keys`,
    );
    console.log(file.publicKey);
  });
