/**
 * Maps a dotted key path of a TOML document to the line where it is written.
 *
 * smol-toml reports no positions, so this scans the (already valid) text once and
 * remembers the first line of every key path: table headers (`[a.b]`), arrays of tables
 * (`[[a.b]]`, indexed), dotted keys (`a.b = 1`), keys of inline tables (`v = { A = 1 }`)
 * and elements of arrays, also across lines. Every prefix of a written path is recorded
 * too, so an implicit table (`tenants` in `[tenants.a]`) maps to where it first appears.
 *
 * @module
 */

/** A key path as zod reports it: table keys and array indices. */
export type KeyPath = readonly PropertyKey[];

/** Line lookup for one TOML text. */
export interface TomlLines {
  /**
   * The 1-based line of `path`, or of its closest recorded ancestor (e.g. the table
   * header of a missing key); 1 when nothing of it is written.
   */
  lineOf(path: KeyPath): number;
}

const BARE_KEY = /[A-Za-z0-9_-]/;
const BARE_KEY_ONLY = /^[A-Za-z0-9_-]+$/;

/**
 * Formats a key path the way it reads in messages: `tenants.shop.routes[0]`,
 * `tenants."odd name".module`.
 */
export function formatKeyPath(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      out += (out === "" ? "" : ".") + (BARE_KEY_ONLY.test(key) ? key : JSON.stringify(key));
    }
  }
  return out;
}
const SCALAR_END = new Set([",", "]", "}", "\n", "\r", "#"]);

function keyOf(path: KeyPath): string {
  return JSON.stringify(path.map((p) => (typeof p === "number" ? p : String(p))));
}

class Scanner {
  readonly lines = new Map<string, number>();
  readonly #text: string;
  #pos = 0;
  #line = 1;
  /** Array-of-tables path (JSON) → index of its last element. */
  readonly #arrays = new Map<string, number>();

  constructor(text: string) {
    this.#text = text;
  }

  #ch(offset = 0): string {
    return this.#text.charAt(this.#pos + offset);
  }

  #record(path: KeyPath, line: number): void {
    for (let n = 0; n <= path.length; n++) {
      const key = keyOf(path.slice(0, n));
      if (!this.lines.has(key)) this.lines.set(key, line);
    }
  }

  #skipSpaces(): void {
    while (this.#ch() === " " || this.#ch() === "\t") this.#pos++;
  }

  /** Skips spaces, newlines and comments. */
  #skipBlank(): void {
    while (this.#pos < this.#text.length) {
      const c = this.#ch();
      if (c === " " || c === "\t" || c === "\r") this.#pos++;
      else if (c === "\n") {
        this.#pos++;
        this.#line++;
      } else if (c === "#") {
        while (this.#pos < this.#text.length && this.#ch() !== "\n") this.#pos++;
      } else return;
    }
  }

  #skipToLineEnd(): void {
    while (this.#pos < this.#text.length && this.#ch() !== "\n") this.#pos++;
  }

  /** Reads a quoted string starting at the current quote; returns its (unescaped) value. */
  #string(): string {
    const q = this.#ch();
    const multi = this.#ch(1) === q && this.#ch(2) === q;
    this.#pos += multi ? 3 : 1;
    let out = "";
    while (this.#pos < this.#text.length) {
      const c = this.#ch();
      if (multi ? c === q && this.#ch(1) === q && this.#ch(2) === q : c === q) {
        this.#pos += multi ? 3 : 1;
        // A multi-line string may end with up to two extra quotes (`"""a"""""`).
        if (multi) {
          for (let i = 0; i < 2 && this.#ch() === q; i++) {
            out += q;
            this.#pos++;
          }
        }
        return out;
      }
      if (c === "\n") this.#line++;
      if (c === "\\" && q === '"') {
        const e = this.#ch(1);
        if (e === "\n") this.#line++;
        if (e === "u" || e === "U") {
          const len = e === "u" ? 4 : 8;
          out += String.fromCodePoint(
            parseInt(this.#text.slice(this.#pos + 2, this.#pos + 2 + len), 16) || 0,
          );
          this.#pos += 2 + len;
        } else {
          out += ({ n: "\n", t: "\t", r: "\r", b: "\b", f: "\f", e: "\x1b" } as Record<
            string,
            string
          >)[e] ?? e;
          this.#pos += 2;
        }
        continue;
      }
      out += c;
      this.#pos++;
    }
    return out;
  }

  /** Reads a dotted key (`a."b c".d`). */
  #key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.#skipSpaces();
      const c = this.#ch();
      if (c === '"' || c === "'") parts.push(this.#string());
      else {
        const start = this.#pos;
        while (BARE_KEY.test(this.#ch())) this.#pos++;
        parts.push(this.#text.slice(start, this.#pos));
      }
      this.#skipSpaces();
      if (this.#ch() !== ".") return parts;
      this.#pos++;
    }
  }

  /** Maps a header's logical key to its physical path through arrays of tables. */
  #physical(key: string[], isArrayHeader: boolean): (string | number)[] {
    const path: (string | number)[] = [];
    for (let i = 0; i < key.length; i++) {
      path.push(key[i]);
      if (isArrayHeader && i === key.length - 1) break;
      const index = this.#arrays.get(keyOf(path));
      if (index !== undefined) path.push(index);
    }
    return path;
  }

  #value(path: (string | number)[]): void {
    const c = this.#ch();
    if (c === '"' || c === "'") {
      this.#string();
    } else if (c === "[") {
      this.#pos++;
      for (let i = 0;; i++) {
        this.#skipBlank();
        if (this.#ch() === "]" || this.#pos >= this.#text.length) break;
        const item = [...path, i];
        this.#record(item, this.#line);
        const before = this.#pos;
        this.#value(item);
        this.#skipBlank();
        if (this.#ch() === ",") this.#pos++;
        else if (this.#pos === before) break;
      }
      this.#pos++;
    } else if (c === "{") {
      this.#pos++;
      for (;;) {
        this.#skipBlank();
        if (this.#ch() === "}" || this.#pos >= this.#text.length) break;
        const line = this.#line;
        const before = this.#pos;
        const item = [...path, ...this.#key()];
        this.#record(item, line);
        if (this.#ch() === "=") this.#pos++;
        this.#skipSpaces();
        this.#value(item);
        this.#skipBlank();
        if (this.#ch() === ",") this.#pos++;
        else if (this.#pos === before) break;
      }
      this.#pos++;
    } else {
      while (this.#pos < this.#text.length && !SCALAR_END.has(this.#ch())) this.#pos++;
    }
  }

  scan(): void {
    let table: (string | number)[] = [];
    this.#record([], 1);
    while (this.#pos < this.#text.length) {
      this.#skipBlank();
      if (this.#pos >= this.#text.length) break;
      const before = this.#pos;
      const line = this.#line;
      if (this.#ch() === "[") {
        const isArray = this.#ch(1) === "[";
        this.#pos += isArray ? 2 : 1;
        const key = this.#key();
        table = this.#physical(key, isArray);
        if (isArray) {
          const id = keyOf(table);
          const index = (this.#arrays.get(id) ?? -1) + 1;
          this.#arrays.set(id, index);
          table = [...table, index];
        }
        this.#record(table, line);
      } else {
        const path = [...table, ...this.#key()];
        this.#record(path, line);
        if (this.#ch() === "=") this.#pos++;
        this.#skipSpaces();
        this.#value(path);
      }
      this.#skipToLineEnd();
      if (this.#pos === before) this.#pos++;
    }
  }
}

/**
 * Indexes the key paths of a TOML text by line. The text should be valid TOML (parse
 * it first); on invalid text the answers are best effort, never an exception.
 *
 * @example
 * ```ts
 * import { indexTomlLines } from "./_toml_lines.ts";
 * const lines = indexTomlLines('[tenants.shop]\nroutes = [\n  "a/*",\n  "shop",\n]\n');
 * console.log(lines.lineOf(["tenants", "shop", "routes", 1])); // 4
 * console.log(lines.lineOf(["tenants", "shop", "module"])); // 1 (the table header)
 * ```
 */
export function indexTomlLines(text: string): TomlLines {
  const scanner = new Scanner(text);
  try {
    scanner.scan();
  } catch {
    // best effort: keep what was recorded
  }
  const { lines } = scanner;
  return {
    lineOf(path: KeyPath): number {
      for (let n = path.length; n >= 0; n--) {
        const line = lines.get(keyOf(path.slice(0, n)));
        if (line !== undefined) return line;
      }
      return 1;
    },
  };
}
