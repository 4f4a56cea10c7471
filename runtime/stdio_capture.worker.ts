/**
 * Inside a tenant worker: what the tenant prints becomes its log lines (tagged, and bounded by
 * the tenant log limiter), whichever way it prints. A worker shares the process's stdout and
 * stderr: besides the `console` methods the bootstrap captures, `console.table`/`dir`/`dirxml`/
 * `group`/`count`/`time*`/`assert`, `Deno.stdout`/`Deno.stderr` and `process.stdout`/`stderr`
 * wrote there directly (measured, Deno 2.9.6): unbounded, in no tenant's name, and in a cell
 * onto the channel its log lines travel on. Each write becomes one line (without its trailing
 * newline). Stdin reads as empty: the host's (a terminal under `deno task dev`) is not the
 * tenant's.
 *
 * Node's `fs.writeSync(1, …)` family (and `fs.readSync(0, …)`, `fs.createWriteStream` with
 * `fd: 1`) goes through a descriptor table of node's own, per worker, whose 0–2 are the process's
 * stdio (closing the worker's Deno stdout resource doesn't stop it, measured on Deno 2.9.6). Those
 * three entries are closed here: such calls fail with EBADF, and the process's own descriptors stay
 * open (closing a worker's entry closes only that worker's, measured).
 *
 * Imports nothing but web/Deno/node APIs (and `pin` of `hardening.worker.ts`).
 */
import { Console } from "node:console";
import { closeSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import process from "node:process";
import { pin } from "./hardening.worker.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** Where printed text goes: one call per write. */
export type Print = (level: "info" | "error", text: string) => void;

/** The `console` methods that print, beyond the ones the bootstrap maps to log levels itself. */
const PRINTING = [
  "dir",
  "dirxml",
  "table",
  "group",
  "groupCollapsed",
  "groupEnd",
  "count",
  "countReset",
  "time",
  "timeLog",
  "timeEnd",
  "assert",
];

/** Routes every printing path of this worker to `print`; see the module doc. */
export function captureStdio(print: Print): void {
  const decoder = new TextDecoder();
  const emit = (level: "info" | "error", chunk: unknown) => {
    let text = typeof chunk === "string"
      ? chunk
      : chunk instanceof Uint8Array
      ? decoder.decode(chunk)
      : String(chunk);
    if (text.endsWith("\n")) text = text.slice(0, -1);
    if (text) print(level, text);
  };
  const sink = (level: "info" | "error") =>
    new Writable({
      write(chunk: unknown, _encoding: unknown, done: () => void) {
        emit(level, chunk);
        done();
      },
    });
  const out = sink("info"), err = sink("error");

  const c = globalThis.console as Any;
  let nodeConsole: Any; // made on first use: its module graph costs every worker heap
  for (const m of PRINTING) {
    c[m] = (...args: unknown[]) => {
      nodeConsole ??= new Console({ stdout: out, stderr: err, colorMode: false });
      return nodeConsole[m](...args);
    };
  }
  c.clear = () => {};
  if ("_stdout" in c) c._stdout = out;
  if ("_stderr" in c) c._stderr = err;

  const denoWriter = (level: "info" | "error") => ({
    write: (p: Uint8Array) => {
      emit(level, p);
      return Promise.resolve(p.byteLength);
    },
    writeSync: (p: Uint8Array) => {
      emit(level, p);
      return p.byteLength;
    },
    writable: new WritableStream<Uint8Array>({ write: (chunk) => emit(level, chunk) }),
    close() {},
    isTerminal: () => false,
  });
  const stdin = {
    read: () => Promise.resolve(null),
    readSync: () => null,
    readable: new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() }),
    close() {},
    isTerminal: () => false,
    setRaw() {},
  };
  pin(Deno, "stdout", denoWriter("info"));
  pin(Deno, "stderr", denoWriter("error"));
  pin(Deno, "stdin", stdin);
  pin(process, "stdout", out);
  pin(process, "stderr", err);
  pin(process, "stdin", Readable.from([]));
  for (const fd of [0, 1, 2]) {
    try {
      closeSync(fd);
    } catch { /* not open in this worker */ }
  }
}
