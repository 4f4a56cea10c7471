/**
 * How config messages speak of values, shared by `_schema.ts` and the feature
 * schemas it spreads in (`limits_config.ts`, `queue_config.ts`, …).
 *
 * @module
 */
import { z } from "zod";

/**
 * A short description of a TOML value for messages: `"text"`, `12`, `a table`.
 *
 * @example
 * ```ts
 * import { describeValue } from "./_values.ts";
 * console.log(describeValue("10s"), describeValue([1])); // "10s" an array
 * ```
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "a table";
  return typeof value;
}

/**
 * An integer in `[lo, hi]` with one clear message for every way to miss.
 *
 * @example
 * ```ts
 * import { intIn } from "./_values.ts";
 * console.log(intIn(1, 64).safeParse(65).error?.issues[0].message);
 * // must be an integer from 1 to 64, got 65
 * ```
 */
export function intIn(lo: number, hi: number): z.ZodNumber {
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined
      ? undefined
      : `must be an integer from ${lo} to ${hi}, got ${describeValue(iss.input)}`;
  return z.number({ error }).int({ error }).min(lo, { error }).max(hi, { error });
}
