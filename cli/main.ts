/**
 * The `worky` command. Run it as `deno task worky <command>`, or install it:
 * `deno install -g -A --unstable-worker-options -n worky --config deno.json cli/main.ts`.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { WorkyError } from "../runtime/errors.ts";
import { devCommand, serveCommand } from "./commands/serve.ts";
import { cronCommand } from "./commands/cron.ts";
import { queuesCommand } from "./commands/queues.ts";
import { buildCommand } from "./commands/build.ts";
import { keygenCommand } from "./commands/keygen.ts";
import { publishCommand } from "./commands/publish.ts";
import { pullCommand } from "./commands/pull.ts";
import { deployCommand, deploymentsCommand, rollbackCommand } from "./commands/deploy.ts";
import { tokenCommand } from "./commands/token.ts";
import { compileCommand } from "./commands/compile.ts";
import { secretCommand } from "./commands/secret.ts";

export const program = new Command("worky")
  .description("Worky: a self-hosted edge runtime for Workers-style modules")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addCommand(devCommand)
  .addCommand(serveCommand)
  .addCommand(cronCommand)
  .addCommand(queuesCommand)
  .addCommand(buildCommand)
  .addCommand(keygenCommand)
  .addCommand(publishCommand)
  .addCommand(pullCommand)
  .addCommand(deployCommand)
  .addCommand(rollbackCommand)
  .addCommand(deploymentsCommand)
  .addCommand(tokenCommand)
  .addCommand(compileCommand)
  .addCommand(secretCommand);

// addCommand doesn't pass settings down: every subcommand throws instead of exiting, so
// main() reports one line and returns the exit code.
(function exitOverrideAll(cmd: { commands: readonly unknown[] }) {
  for (const sub of cmd.commands as Command[]) {
    sub.exitOverride();
    exitOverrideAll(sub);
  }
})(program);

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
