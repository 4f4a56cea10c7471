/**
 * The `worky` command. Run it as `deno task worky <command>`, or install it:
 * `deno install -A --unstable-worker-options -n worky cli/main.ts`.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { WorkyError } from "../runtime/errors.ts";
import { devCommand } from "./commands/dev.ts";
import { serveCommand } from "./commands/serve.ts";

export const program = new Command("worky")
  .description("Worky: a self-hosted edge runtime for Workers-style modules")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addCommand(devCommand)
  .addCommand(serveCommand);

/** Runs the CLI; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (or help/version)
      return err.exitCode;
    }
    if (err instanceof WorkyError) {
      console.error(`worky: ${err.code}: ${err.message}`);
      return err.isUserError ? 1 : 2;
    }
    console.error(`worky: unexpected error: ${(err as Error)?.stack ?? err}`);
    return 2;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code !== 0) Deno.exit(code);
}
