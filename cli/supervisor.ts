/**
 * `worky serve` / `worky dev` run the server in a child process and restart it
 * when it dies, so even a hard crash of the server process (V8 aborting on a
 * worker's out-of-memory, a runaway worker thread, kill -9) costs the requests
 * in flight and ~0.5 s of downtime, not the service.
 *
 * - The child is `cli/main.ts <serve|dev> … --no-supervise` with `WORKY_SUPERVISED=1`.
 * - Its stdout (JSON log lines) is forwarded; the first `listening on http://…:PORT` pins the
 *   port, so a restart of a `--port 0` server listens where clients already connect.
 * - Restart delay: 100 ms, doubling per death while the child lived less than 30 s, at most
 *   10 s. Every exit is logged with its code and signal.
 * - SIGINT/SIGTERM are forwarded to the child; the supervisor exits when it has.
 * - The child holds a pipe from the supervisor on stdin and stops when it reaches EOF, so a
 *   kill -9 of the supervisor does not leave an orphan server holding the port.
 */
import { JsonLogger, type Logger } from "../runtime/logger.ts";

export interface SuperviseOptions {
  command: "serve" | "dev";
  config: string;
  port?: number;
  hostname?: string;
  logger?: Logger;
  /** Called with each new child's pid (tests). */
  onStart?(pid: number): void;
}

/** Env var set in the supervised child. */
export const SUPERVISED_ENV = "WORKY_SUPERVISED";
const MAIN = new URL("./main.ts", import.meta.url);
const LISTENING = /listening on http:\/\/[^\s"]*:(\d+)/;
const HEALTHY_AFTER_MS = 30_000;

/** The restart delay after `streak` deaths in a row of short-lived children. */
export function restartDelayMs(streak: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, streak - 1));
}

/**
 * Runs the server under supervision; resolves (with the exit code to use) only after a
 * SIGINT/SIGTERM stopped the child.
 *
 * @example
 * ```ts ignore
 * const code = await supervise({ command: "serve", config: "worky.toml", port: 8787 });
 * Deno.exit(code);
 * ```
 */
export async function supervise(opts: SuperviseOptions): Promise<number> {
  const logger = opts.logger ?? new JsonLogger();
  let port = opts.port;
  let stopping = false;
  let child: Deno.ChildProcess | undefined;
  const forward = (signal: Deno.Signal) => () => {
    stopping = true;
    try {
      child?.kill(signal);
    } catch { /* already gone */ }
  };
  const onInt = forward("SIGINT"), onTerm = forward("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  let streak = 0;
  let lastCode = 0;
  try {
    while (!stopping) {
      const args = ["run", "-A", "--unstable-worker-options", MAIN.pathname, opts.command];
      args.push("--config", opts.config, "--no-supervise");
      if (port !== undefined) args.push("--port", String(port));
      if (opts.hostname) args.push("--hostname", opts.hostname);
      const started = performance.now();
      child = new Deno.Command(Deno.execPath(), {
        args,
        env: { [SUPERVISED_ENV]: "1" },
        stdin: "piped", // never written: EOF tells the child its supervisor is gone
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      logger.log({ level: "info", msg: `supervisor: server process started`, pid: child.pid });
      opts.onStart?.(child.pid);
      const copied = copyStdout(child.stdout, (p) => {
        if (!port) port = p; // pin "any free port" to the one clients already use
      });
      const status = await child.status;
      await copied;
      lastCode = status.code;
      if (stopping) break;
      streak = performance.now() - started < HEALTHY_AFTER_MS ? streak + 1 : 1;
      const delay = restartDelayMs(streak);
      logger.log({
        level: "error",
        msg: `supervisor: server process ${child.pid} exited with code ${status.code}` +
          (status.signal ? ` (signal ${status.signal})` : "") + `; restarting in ${delay} ms`,
        code: status.code,
        signal: status.signal,
        restarts: streak,
      });
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
  return lastCode === 0 || lastCode === 130 || lastCode === 143 ? 0 : lastCode;
}

/** Copies the child's stdout to ours; reports the first port it says it listens on. */
async function copyStdout(stream: ReadableStream<Uint8Array>, onPort: (port: number) => void) {
  const decoder = new TextDecoder();
  let seen = "";
  let found = false;
  for await (const chunk of stream) {
    try {
      await Deno.stdout.write(chunk);
    } catch { /* our stdout is gone: keep draining */ }
    if (found) continue;
    seen = (seen + decoder.decode(chunk, { stream: true })).slice(-4096);
    const m = LISTENING.exec(seen);
    if (m) {
      found = true;
      onPort(Number(m[1]));
    }
  }
}

/**
 * In the supervised child: calls `stop` when the supervisor's pipe on stdin closes
 * (the supervisor died, even by kill -9).
 */
export function stopWhenSupervisorGone(stop: () => void): void {
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) { /* the supervisor never writes */ }
    } catch { /* closed */ }
    stop();
  })();
}
