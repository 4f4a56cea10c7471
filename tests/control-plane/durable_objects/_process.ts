/** Starts {@link ./_child.ts} as a real child Worky process and waits until it serves. */
import { REPO } from "../../_helpers/fixture.ts";

export interface ChildWorky {
  url: string;
  process: Deno.ChildProcess;
  /** Everything the child wrote to stderr (after it ended). */
  stderr: Promise<string>;
  kill(signal?: Deno.Signal): Promise<void>;
}

export async function spawnWorky(configPath: string, leaseMs: number): Promise<ChildWorky> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--config",
      `${REPO}deno.json`,
      `${REPO}tests/control-plane/durable_objects/_child.ts`,
      configPath,
      String(leaseMs),
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child Worky ended before serving: ${await stderr}`);
    out += value;
  }
  reader.releaseLock();
  const match = /LISTENING (\S+)/.exec(out);
  if (!match) throw new Error(`unexpected child output: ${out}`);
  let ended = false;
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  return {
    url: match[1],
    process: child,
    stderr,
    async kill(signal: Deno.Signal = "SIGKILL") {
      if (!ended) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      await status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
