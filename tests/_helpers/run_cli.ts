/** Runs `cli/main.ts` as a real child process and collects what it printed. */
import { REPO } from "./fixture.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `worky <args>` in `cwd` (default: the repo), with `env` added to this process's
 * environment (`NO_COLOR=1` always) and `stdin` as its input (default: none).
 */
export async function runCli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", `${REPO}cli/main.ts`, ...args],
    cwd: opts.cwd ?? REPO,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = child.stdin.getWriter();
  if (opts.stdin) await input.write(new TextEncoder().encode(opts.stdin));
  await input.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
