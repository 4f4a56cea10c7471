/**
 * Turns zod issues into config errors (a key path and a readable message). Messages
 * written in the schema win; {@linkcode configErrorMap} words the generic ones.
 *
 * @module
 */

import type { z } from "zod";
import { describeValue } from "./_values.ts";
import type { KeyPath } from "./_toml_lines.ts";

/** One problem in a config file, before it gets its `file:line:` prefix. */
export interface ConfigIssue {
  path: KeyPath;
  message: string;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "an array",
  object: "a table",
  record: "a table",
};

type RawIssue = z.core.$ZodRawIssue;

/** Names the keys a strict object accepts, from the schema that reported an issue. */
function allowedKeys(issue: RawIssue): string[] {
  const def = (issue.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod?.def;
  return def?.shape ? Object.keys(def.shape) : [];
}

/**
 * The per-parse zod error map: readable wording for the issues the schema has no
 * message of its own for. Returns `undefined` to keep zod's wording.
 */
export function configErrorMap(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "missing required key";
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${
        describeValue(issue.input)
      }`;
    case "unrecognized_keys": {
      const keys = allowedKeys(issue);
      return keys.length > 0 ? `unknown key (expected one of: ${keys.join(", ")})` : "unknown key";
    }
    case "too_small":
      if (issue.origin === "array" && Number(issue.minimum) === 1) return "must not be empty";
      return undefined;
    default:
      return undefined;
  }
}

/** Flattens zod issues to config issues; an unknown-keys issue becomes one per key. */
export function toConfigIssues(issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ path: [...issue.path, key], message: issue.message });
      }
    } else {
      out.push({ path: issue.path, message: issue.message });
    }
  }
  return out;
}
