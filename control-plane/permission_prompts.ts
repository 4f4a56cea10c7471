/**
 * Deno asks on the terminal for any permission code lacks, tenant workers included: measured on
 * Deno 2.9.6, a tenant with no permissions that read `/etc/hostname` in a server run from a
 * terminal held its request on a "Deno requests read access" prompt, and answering `y` granted
 * it. Deno prompts only when stdin and stderr are both terminals and `--no-prompt` is not set.
 * A supervised server's stdin is its supervisor's pipe, and the tasks, the supervisor's child and
 * compiled binaries run with `--no-prompt`; `startServer` (tenants in this process) refuses to
 * start from a terminal without that flag.
 *
 * @module
 */
import { WorkyError } from "../runtime/errors.ts";

/** What decides whether this process can prompt (injected in tests). */
export interface PromptFacts {
  stdinIsTerminal: boolean;
  stderrIsTerminal: boolean;
  /** This process's command line, if known (`/proc/self/cmdline` on Linux). */
  cmdline: string[] | undefined;
  /** `DENO_NO_PROMPT`, if set. */
  noPromptEnv: string | undefined;
  /** A `deno compile`d binary (`worky compile` builds them with `--no-prompt`). */
  standalone?: boolean;
}

/** This process's facts. */
export function promptFacts(): PromptFacts {
  let cmdline: string[] | undefined;
  try {
    cmdline = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  } catch { /* not Linux */ }
  return {
    stdinIsTerminal: Deno.stdin.isTerminal(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    cmdline,
    noPromptEnv: Deno.env.get("DENO_NO_PROMPT"),
    standalone: Deno.build.standalone,
  };
}

/**
 * Throws `ERR_PERMISSION_PROMPTS` when Deno could prompt on this terminal for a tenant.
 *
 * @example
 * ```ts
 * import { assertNoPermissionPrompts } from "./permission_prompts.ts";
 * assertNoPermissionPrompts({ stdinIsTerminal: false, stderrIsTerminal: true, cmdline: [], noPromptEnv: undefined });
 * ```
 */
export function assertNoPermissionPrompts(facts: PromptFacts = promptFacts()): void {
  if (!facts.stdinIsTerminal || !facts.stderrIsTerminal || facts.standalone) return;
  if (facts.noPromptEnv !== undefined && facts.noPromptEnv !== "") return;
  const args = facts.cmdline ?? [];
  // deno's own flags come before the script: `deno run --no-prompt -A cli/main.ts …`
  if (args.includes("--no-prompt")) return;
  throw new WorkyError(
    "ERR_PERMISSION_PROMPTS",
    "refusing to serve tenants from this terminal with Deno's permission prompts on: a tenant " +
      "that touches something it lacks would ask you here, and answering yes would grant it. " +
      "Run deno with --no-prompt (the deno tasks do; so does the server `worky serve` " +
      "supervises), or set DENO_NO_PROMPT=1",
  );
}
