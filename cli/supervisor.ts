/**
 * `worky serve` / `worky dev` run the server in a child process and restart it
 * when it dies, so even a hard crash of the server process (V8 aborting on a
 * worker's out-of-memory, kill -9) costs the requests in flight and ~0.5 s of
 * downtime, not the service; and replace it without downtime when it asks.
 *
 * - The child is `cli/main.ts <serve|dev> … --no-supervise` with `WORKY_SUPERVISED=1`; it
 *   listens with `reusePort` (SO_REUSEPORT, Linux) so a replacement can bind the same port.
 * - Its stdout (JSON log lines) is forwarded; the first `listening on http://…:PORT` pins the
 *   port, so a restart of a `--port 0` server listens where clients already connect.
 * - **Graceful handoff.** A child that logs a line with `"supervisor":"replace-me"` (see
 *   {@link requestReplacement}: a zombie worker thread pins a core, or a runaway thread will
 *   abort it) is replaced without refusing a connection: the supervisor starts the new child
 *   first on the same port, waits for its `listening` line, then sends SIGTERM to the old one,
 *   which stops accepting, finishes its in-flight requests (bounded), releases its leases and
 *   exits. Only then is the handoff done. A replacement that dies before listening leaves the
 *   old child serving; the handoff is retried after the restart delay.
 * - Restart delay after a death: 100 ms, doubling per death while the child lived less than
 *   30 s, at most 10 s. Every exit is logged with its code and signal.
 * - SIGINT/SIGTERM are forwarded to the children; the supervisor exits when they have.
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
  /** How long an old child may take to drain after SIGTERM before SIGKILL (default 30 s). */
  handoffKillMs?: number;
}

/**
 * Env var set in the supervised child: the supervisor run's id (one per `supervise()` call, the
 * same for every child it starts, so they can tell their own run's records from older ones).
 */
export const SUPERVISED_ENV = "WORKY_SUPERVISED";
/** Value of the `supervisor` field of a child's log line asking to be replaced. */
export const REPLACE_ME = "replace-me";
const REPLACE_MARKER = `"supervisor":"${REPLACE_ME}"`;
const MAIN = new URL("./main.ts", import.meta.url);
const LISTENING = /listening on http:\/\/[^\s"]*:(\d+)/;
const HEALTHY_AFTER_MS = 30_000;

/** The restart delay after `streak` deaths in a row of short-lived children. */
export function restartDelayMs(streak: number): number {
  return Math.min(10_000, 100 * 2 ** Math.max(0, streak - 1));
}

/**
 * In a supervised child: asks the supervisor for a graceful replacement (one JSON line on
 * stdout; the supervisor then starts a new child and sends this one SIGTERM).
 *
 * @example
 * ```ts ignore
 * requestReplacement(logger, `tenant "loop": zombie thread worker-7 pins a core`);
 * ```
 */
export function requestReplacement(logger: Logger, reason: string): void {
  logger.log({
    level: "warn",
    msg: `asking the supervisor for a replacement process: ${reason}`,
    supervisor: REPLACE_ME,
    reason,
  });
}

interface Child {
  proc: Deno.ChildProcess;
  pid: number;
  startedAt: number;
  /** Exit status, once its stdout is fully copied. */
  status: Promise<Deno.CommandStatus>;
  /** The port from its `listening on` line. */
  listening: Promise<number>;
  /** The reason of its first replacement request. */
  replace: Promise<string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const handoffKillMs = opts.handoffKillMs ?? 30_000;
  const run = crypto.randomUUID();
  let port = opts.port;
  let stopping = false;
  const live = new Set<Child>();
  const forward = (signal: Deno.Signal) => () => {
    stopping = true;
    for (const c of live) {
      try {
        c.proc.kill(signal);
      } catch { /* already gone */ }
    }
  };
  const onInt = forward("SIGINT"), onTerm = forward("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);

  const start = (): Child => {
    const args = [
      "run",
      "-A",
      "--no-prompt", // control-plane/permission_prompts.ts (its stdin is a pipe too)
      "--unstable-worker-options",
      "--unstable-net",
      MAIN.pathname,
    ];
    args.push(opts.command); // --unstable-net: reusePort
    args.push("--config", opts.config, "--no-supervise");
    if (port !== undefined) args.push("--port", String(port));
    if (opts.hostname) args.push("--hostname", opts.hostname);
    const proc = new Deno.Command(Deno.execPath(), {
      args,
      env: { [SUPERVISED_ENV]: run },
      stdin: "piped", // never written: EOF tells the child its supervisor is gone
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    logger.log({ level: "info", msg: `supervisor: server process started`, pid: proc.pid });
    opts.onStart?.(proc.pid);
    const listening = Promise.withResolvers<number>();
    const replace = Promise.withResolvers<string>();
    const copied = copyStdout(proc.stdout, (p) => {
      if (!port) port = p; // pin "any free port" to the one clients already use
      listening.resolve(p);
    }, replace.resolve);
    const child: Child = {
      proc,
      pid: proc.pid,
      startedAt: performance.now(),
      status: Promise.all([proc.status, copied]).then(([s]) => s),
      listening: listening.promise,
      replace: replace.promise,
    };
    live.add(child);
    child.status.then(() => live.delete(child));
    return child;
  };

  /** Starts a replacement next to `old`; resolves with whichever child serves afterwards. */
  const handOver = async (old: Child, reason: string): Promise<Child> => {
    for (let attempt = 1;; attempt++) {
      logger.log({
        level: "warn",
        msg: `supervisor: server process ${old.pid} asks to be replaced (${reason}); ` +
          `starting its replacement first`,
        pid: old.pid,
      });
      const next = start();
      const first = await Promise.race([
        next.listening.then(() => "listening" as const),
        next.status.then(() => "next-exited" as const),
        old.status.then(() => "old-exited" as const),
      ]);
      if (first === "old-exited" || stopping) {
        const s = await old.status;
        if (!stopping) {
          logger.log({
            level: "error",
            msg: `supervisor: server process ${old.pid} exited with code ${s.code}` +
              (s.signal ? ` (signal ${s.signal})` : "") + ` during its handoff; ` +
              `process ${next.pid} takes over`,
            code: s.code,
            signal: s.signal,
          });
        }
        return next;
      }
      if (first === "next-exited") {
        const s = await next.status;
        const delay = restartDelayMs(attempt);
        logger.log({
          level: "error",
          msg: `supervisor: replacement process ${next.pid} exited with code ${s.code} before ` +
            `listening; process ${old.pid} keeps serving; retrying in ${delay} ms`,
        });
        await Promise.race([sleep(delay), old.status]);
        if (stopping) return old;
        continue;
      }
      const at = performance.now();
      logger.log({
        level: "info",
        msg: `supervisor: replacement process ${next.pid} listens on port ${await next
          .listening}; stopping process ${old.pid} gracefully (SIGTERM)`,
      });
      try {
        old.proc.kill("SIGTERM");
      } catch { /* already gone */ }
      const killTimer = setTimeout(() => {
        try {
          old.proc.kill("SIGKILL");
        } catch { /* gone */ }
      }, handoffKillMs);
      const s = await old.status;
      clearTimeout(killTimer);
      logger.log({
        level: "info",
        msg: `supervisor: handoff done: process ${old.pid} exited with code ${s.code}` +
          (s.signal ? ` (signal ${s.signal})` : "") +
          ` ${Math.round(performance.now() - at)} ms after SIGTERM; process ${next.pid} serves`,
        pid: next.pid,
        exitCode: s.code,
      });
      return next;
    }
  };

  let streak = 0;
  let lastCode = 0;
  let current = start();
  try {
    while (true) {
      const ev = await Promise.race([
        current.status.then((s) => ({ exit: s, reason: "" })),
        current.replace.then((reason) => ({ exit: undefined, reason })),
      ]);
      if (ev.exit === undefined && !stopping) {
        current = await handOver(current, ev.reason);
        continue;
      }
      const status = ev.exit ?? await current.status;
      lastCode = status.code;
      if (stopping) break;
      streak = performance.now() - current.startedAt < HEALTHY_AFTER_MS ? streak + 1 : 1;
      const delay = restartDelayMs(streak);
      logger.log({
        level: "error",
        msg: `supervisor: server process ${current.pid} exited with code ${status.code}` +
          (status.signal ? ` (signal ${status.signal})` : "") + `; restarting in ${delay} ms`,
        code: status.code,
        signal: status.signal,
        restarts: streak,
      });
      await sleep(delay);
      if (stopping) break;
      current = start();
    }
    await Promise.all([...live].map((c) => c.status)); // a stop reached every child
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
  return lastCode === 0 || lastCode === 130 || lastCode === 143 ? 0 : lastCode;
}

/**
 * Copies the child's stdout to ours; reports the first port it says it listens on and its
 * first replacement request.
 */
async function copyStdout(
  stream: ReadableStream<Uint8Array>,
  onPort: (port: number) => void,
  onReplace: (reason: string) => void,
) {
  const decoder = new TextDecoder();
  let seen = "";
  let line = "";
  let found = false;
  let replaced = false;
  for await (const chunk of stream) {
    try {
      await Deno.stdout.write(chunk);
    } catch { /* our stdout is gone: keep draining */ }
    if (found && replaced) continue;
    const text = decoder.decode(chunk, { stream: true });
    if (!found) {
      seen = (seen + text).slice(-4096);
      const m = LISTENING.exec(seen);
      if (m) {
        found = true;
        onPort(Number(m[1]));
      }
    }
    if (replaced) continue;
    line += text;
    let i;
    while ((i = line.indexOf("\n")) >= 0) {
      const one = line.slice(0, i);
      line = line.slice(i + 1);
      if (!one.includes(REPLACE_MARKER)) continue;
      let reason = "no reason given";
      try {
        reason = String(JSON.parse(one).reason ?? reason);
      } catch { /* not JSON after all */ }
      replaced = true;
      onReplace(reason);
      break;
    }
    if (line.length > 65_536) line = line.slice(-4096); // a huge line without a newline
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
