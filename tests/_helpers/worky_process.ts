/**
 * Real Worky processes for the multi-process tests: {@link serveWorky} runs
 * `cli/main.ts serve` (what an operator runs); {@link startWorkyChild} runs
 * `worky_child.ts`, a server with test tuning. Both resolve once the child listens.
 */
import { REPO } from "./fixture.ts";
import type { ServerOptions } from "../../control-plane/server.ts";

/** Server tuning a child takes (JSON: no clock, no logger). */
export type WorkyTuning = Pick<ServerOptions, "spares" | "scheduler" | "durableObjects">;

/** A Worky child process that is listening. */
export interface WorkyProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  process: Deno.ChildProcess;
  /** Sends `signal` (default SIGKILL) unless the child already ended; resolves with its status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** The JSON log line of `worky serve` and the line of `worky_child.ts` (URL ended by `"` or `\n`). */
const LISTENING = /listening on (http:\/\/[0-9.:]+)["\s]/;

/** `worky serve --config <configPath> --port 0` as a child process. */
export function serveWorky(configPath: string): Promise<WorkyProcess> {
  return spawnWorky([`${REPO}cli/main.ts`, "serve", "--config", configPath, "--port", "0"]);
}

/** {@link ./worky_child.ts} as a child process, serving `configPath` with `tuning`. */
export function startWorkyChild(
  configPath: string,
  tuning: WorkyTuning = {},
): Promise<WorkyProcess> {
  return spawnWorky([`${REPO}tests/_helpers/worky_child.ts`, configPath, JSON.stringify(tuning)]);
}

async function spawnWorky(args: string[]): Promise<WorkyProcess> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-worker-options", "--config", `${REPO}deno.json`, ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(process.stderr).text();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let match: RegExpExecArray | null;
  while (!(match = LISTENING.exec(seen))) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`worky ${args.join(" ")} ended before listening: ${await stderr}`);
    seen += value;
  }
  // keep draining stdout so the child never blocks on a full pipe
  (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
  })();
  let ended = false;
  const status = process.status.then((s) => {
    ended = true;
    return s;
  });
  return {
    url: match[1],
    process,
    async stop(signal: Deno.Signal = "SIGKILL") {
      if (!ended) {
        try {
          process.kill(signal);
        } catch { /* already gone */ }
      }
      return await status;
    },
  };
}

/** A supervised `worky serve` whose JSON log lines are collected as they come. */
export interface SupervisedWorky {
  proc: Deno.ChildProcess;
  /** Every JSON log line so far (supervisor and server), parsed. */
  lines: Record<string, unknown>[];
  /** The `msg` of every line so far. */
  msgs(): string[];
  /** Pids of the server processes the supervisor started, in order. */
  pids(): number[];
  /** Every URL a server logged "listening on", in order. */
  urls(): string[];
}

/**
 * `worky serve --config <configPath> --port 0` under its supervisor (the default), as a
 * child process; `extraArgs` go after the command (e.g. `--no-supervise`).
 */
export function startSupervised(configPath: string, extraArgs: string[] = []): SupervisedWorky {
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      `${REPO}cli/main.ts`,
      "serve",
      "--config",
      configPath,
      "--port",
      "0",
      "--hostname",
      "127.0.0.1",
      ...extraArgs,
    ],
    cwd: REPO,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          lines.push(JSON.parse(line));
        } catch { /* not a log line */ }
      }
    }
  })();
  const msgs = () => lines.map((l) => String(l.msg));
  return {
    proc,
    lines,
    msgs,
    pids: () =>
      lines.filter((l) => l.msg === "supervisor: server process started").map((l) => Number(l.pid)),
    urls: () => msgs().flatMap((m) => /listening on (http:\/\/[0-9.:]+)/.exec(m)?.[1] ?? []),
  };
}
