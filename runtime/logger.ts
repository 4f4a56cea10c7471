/**
 * Structured logging: one JSON object per line. Tenant `console.*` output
 * arrives here tagged with tenant and request id.
 */
import type { LogLevel } from "./protocol.ts";

export interface LogEntry {
  level: LogLevel;
  msg: string;
  tenant?: string;
  requestId?: string | null;
  [field: string]: unknown;
}

export interface Logger {
  log(entry: LogEntry): void;
}

/**
 * Writes JSON lines; `minLevel` drops the quieter ones.
 *
 * @example
 * ```ts
 * import { JsonLogger } from "./logger.ts";
 * new JsonLogger().log({ level: "info", msg: "started", port: 8787 });
 * ```
 */
export class JsonLogger implements Logger {
  static readonly ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  constructor(
    private readonly write: (line: string) => void = (line) => console.log(line),
    private readonly minLevel: LogLevel = "info",
    private readonly now: () => number = Date.now,
  ) {}
  log(entry: LogEntry): void {
    if (JsonLogger.ORDER[entry.level] < JsonLogger.ORDER[this.minLevel]) return;
    this.write(JSON.stringify({ time: new Date(this.now()).toISOString(), ...entry }));
  }
}

/** Keeps entries in memory; for tests and the dev console. */
export class MemoryLogger implements Logger {
  readonly entries: LogEntry[] = [];
  log(entry: LogEntry): void {
    this.entries.push(entry);
  }
}
