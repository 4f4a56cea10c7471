/**
 * Argument parsers and shared plumbing of the registry/deploy commands: each parser names
 * the option and what is wrong.
 *
 * @module
 */
import { InvalidArgumentError } from "commander";
import { loadConfig } from "../control-plane/config/load_config.ts";
import type { WorkyConfig } from "../control-plane/config/types.ts";
import { type Database, openDatabase } from "../control-plane/storage/database.ts";
import { TENANT_NAME } from "../control-plane/config/_schema.ts";
import { TOKEN_SCOPES, type TokenScope } from "../control-plane/auth/tokens.ts";
import { parseRef } from "../control-plane/registry/registry.ts";
import { WorkyError } from "../runtime/errors.ts";
import { importKeyFile, type SigningKey } from "../runtime/artifact/signing.ts";

/** `http(s)://host[:port]` */
export function parseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL (expected http://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError(`"${value}" is not an http(s) URL`);
  }
  return url.origin;
}

export function parseScope(value: string): TokenScope {
  if (!(TOKEN_SCOPES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(
      `"${value}" is not a scope (expected ${TOKEN_SCOPES.join(", ")})`,
    );
  }
  return value as TokenScope;
}

export function parseTenant(value: string): string {
  if (!TENANT_NAME.test(value)) {
    throw new InvalidArgumentError(
      `"${value}" is not a tenant name (lowercase letter first, then a-z 0-9 _ -)`,
    );
  }
  return value;
}

/** `scope/name@range` (checked here; returned as written). */
export function parseRefArg(value: string): string {
  try {
    parseRef(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

/** The token from `--token` or `WORKY_TOKEN`; throws when neither is set. */
export function requireTokenArg(token: string | undefined, what: string): string {
  const value = token ?? Deno.env.get("WORKY_TOKEN");
  if (!value) {
    throw new WorkyError(
      "ERR_UNAUTHORIZED",
      `${what} needs an API token: pass --token or set WORKY_TOKEN (create one with "worky token create")`,
    );
  }
  return value;
}

/** Loads a signing key from `--key` or `WORKY_SIGNING_KEY` (a file path); undefined when neither. */
export async function loadKey(path: string | undefined): Promise<SigningKey | undefined> {
  const file = path ?? Deno.env.get("WORKY_SIGNING_KEY");
  if (!file) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new WorkyError("ERR_BAD_REQUEST", `cannot read key file ${file}: ${why}`);
  }
  return await importKeyFile(text, file);
}

/** Opens a config and its database; call `close()` when done. */
export async function openLocal(
  configPath: string,
): Promise<{ config: WorkyConfig; database: Database; close(): void }> {
  const config = await loadConfig(configPath);
  const database = await openDatabase(config.server.dbUrl);
  return { config, database, close: () => database.close() };
}

/** Formats rows as an aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
