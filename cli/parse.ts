/**
 * Argument parsers for commander options: each names the option and what is
 * wrong when the input is bad.
 */
import { InvalidArgumentError } from "commander";

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw new InvalidArgumentError(`"${value}" is not a port (expected 0–65535)`);
  }
  return n;
}
