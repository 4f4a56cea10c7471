/**
 * A Logger wrapper that also keeps the lines of chosen request ids, so a cron
 * run (or queue delivery) can be stored with the log lines it produced. Every
 * entry still goes to the wrapped logger.
 *
 * @module
 */
import type { LogEntry, Logger } from "../../runtime/logger.ts";

/** One captured line. */
export interface CapturedLine {
  time: number;
  level: string;
  msg: string;
}

/** Most lines kept per run. */
const MAX_LINES = 200;
/** Longest line kept, characters. */
const MAX_LINE = 4_000;

/**
 * Wraps a logger and captures the entries of watched request ids.
 *
 * @example
 * ```ts
 * import { MemoryLogger } from "../../runtime/logger.ts";
 * import { RunLogCapture } from "./run_log_capture.ts";
 * const capture = new RunLogCapture(new MemoryLogger());
 * capture.watch("cron-1");
 * capture.log({ level: "info", msg: "hello", requestId: "cron-1" });
 * console.log(capture.take("cron-1").map((l) => l.msg)); // ["hello"]
 * ```
 */
export class RunLogCapture implements Logger {
  readonly #inner: Logger;
  readonly #now: () => number;
  readonly #watched = new Map<string, CapturedLine[]>();

  constructor(inner: Logger, now: () => number = Date.now) {
    this.#inner = inner;
    this.#now = now;
  }

  log(entry: LogEntry): void {
    this.#inner.log(entry);
    const id = entry.requestId;
    if (!id) return;
    const lines = this.#watched.get(id);
    if (lines && lines.length < MAX_LINES) {
      lines.push({
        time: this.#now(),
        level: entry.level,
        msg: String(entry.msg).slice(0, MAX_LINE),
      });
    }
  }

  /** Starts keeping the lines of `requestId`. */
  watch(requestId: string): void {
    if (!this.#watched.has(requestId)) this.#watched.set(requestId, []);
  }

  /** Stops watching `requestId` and returns its lines. */
  take(requestId: string): CapturedLine[] {
    const lines = this.#watched.get(requestId) ?? [];
    this.#watched.delete(requestId);
    return lines;
  }
}
