/**
 * Progress for long CLI steps (bundling, uploading, compiling): a @clack/prompts spinner
 * when stderr is a terminal, plain `worky: …` lines otherwise (logs, CI, tests).
 *
 * @module
 */
import process from "node:process";
import { spinner } from "@clack/prompts";

function interactive(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/**
 * Runs `fn` with a spinner labelled `label`; `done` turns its result into the final line.
 *
 * @example
 * ```ts ignore
 * const bundle = await step("bundling mod.ts", () => bundleModule(entry), (b) => `bundled ${b.hash}`);
 * ```
 */
export async function step<T>(
  label: string,
  fn: () => Promise<T>,
  done?: (result: T) => string,
): Promise<T> {
  if (!interactive()) {
    console.error(`worky: ${label}…`);
    const result = await fn();
    if (done) console.error(`worky: ${done(result)}`);
    return result;
  }
  const s = spinner({ output: process.stderr });
  s.start(label);
  try {
    const result = await fn();
    s.stop(done ? done(result) : label);
    return result;
  } catch (err) {
    s.error(`${label}: failed`);
    throw err;
  }
}

/** A line on stderr: a note for the person at the terminal (stdout stays for results). */
export function note(line: string): void {
  console.error(`worky: ${line}`);
}

/** A visible warning line on stderr. */
export function warn(line: string): void {
  console.error(`worky: WARNING: ${line}`);
}
