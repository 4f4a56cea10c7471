/**
 * The ingress route table: maps a request's host and path to a value (a deployment),
 * precomputed so that a lookup does no regex work and allocates nothing.
 *
 * @module
 */

import { WorkyError } from "../../runtime/errors.ts";
import { normalizeHost, parseRoute, type Route } from "./route.ts";

/** One route of a table, with its value and its position in the input. */
export interface RouteEntry<T> {
  readonly route: Route;
  readonly value: T;
  /** Index of the `[pattern, value]` pair in the input. */
  readonly index: number;
}

/** Two routes whose normalized patterns are identical, so neither is more specific. */
export interface RouteConflict<T> {
  /** The shared normalized pattern. */
  readonly normalized: string;
  /** The entry that came first in the input. */
  readonly first: RouteEntry<T>;
  /** A later entry with the same normalized pattern. */
  readonly second: RouteEntry<T>;
}

function parseAll<T>(pairs: Iterable<readonly [string, T]>): RouteEntry<T>[] {
  const entries: RouteEntry<T>[] = [];
  for (const [pattern, value] of pairs) {
    entries.push({ route: parseRoute(pattern), value, index: entries.length });
  }
  return entries;
}

function conflictsOf<T>(entries: readonly RouteEntry<T>[]): RouteConflict<T>[] {
  const seen = new Map<string, RouteEntry<T>>();
  const conflicts: RouteConflict<T>[] = [];
  for (const entry of entries) {
    const first = seen.get(entry.route.normalized);
    if (first) conflicts.push({ normalized: entry.route.normalized, first, second: entry });
    else seen.set(entry.route.normalized, entry);
  }
  return conflicts;
}

/**
 * Finds ambiguous routes: pairs whose normalized patterns are identical (e.g.
 * `Hello.localhost/*` and `hello.localhost/*`). Each later duplicate is reported once,
 * paired with the first occurrence. Throws like {@linkcode parseRoute} on a bad pattern.
 *
 * @example
 * ```ts
 * import { findConflicts } from "./route_table.ts";
 * const conflicts = findConflicts([["a.localhost/*", "a"], ["A.localhost/*", "b"]]);
 * console.log(conflicts[0].first.value, conflicts[0].second.value); // "a" "b"
 * ```
 */
export function findConflicts<T>(pairs: Iterable<readonly [string, T]>): RouteConflict<T>[] {
  return conflictsOf(parseAll(pairs));
}

/** Most specific first; see {@linkcode RouteTable}. */
function bySpecificity<T>(a: RouteEntry<T>, b: RouteEntry<T>): number {
  const ra = a.route;
  const rb = b.route;
  if (ra.pathWeight !== rb.pathWeight) return rb.pathWeight - ra.pathWeight;
  if (ra.pathKind !== rb.pathKind) return ra.pathKind === "exact" ? -1 : 1;
  if (ra.path.length !== rb.path.length) return rb.path.length - ra.path.length;
  return a.index - b.index;
}

function firstPathMatch<T>(
  list: readonly RouteEntry<T>[],
  path: string,
): RouteEntry<T> | undefined {
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    const route = entry.route;
    if (route.pathKind === "exact") {
      if (path === route.path) return entry;
    } else if (path.startsWith(route.path) || path === route.barePath) {
      return entry;
    }
  }
  return undefined;
}

/** Buckets smaller than this are scanned; larger ones are indexed by first path segment. */
const SMALL_BUCKET = 8;

/** The first path segment every path matched by `route` has, if the route fixes one. */
function firstSegment(route: Route): string | undefined {
  const end = route.path.indexOf("/", 1);
  if (end !== -1) return route.path.slice(1, end); // "/api/v1/*", "/api/", "/a/b"
  return route.pathKind === "exact" ? route.path.slice(1) : undefined; // "/health" vs "/img*"
}

/** The routes of one host key, most specific first. */
class Bucket<T> {
  readonly #all: RouteEntry<T>[] = [];
  /** For large buckets: routes by the first path segment they require… */
  #bySegment: Map<string, RouteEntry<T>[]> | undefined;
  /** …and the routes that don't require one (`/*`, `/img*`). */
  readonly #rest: RouteEntry<T>[] = [];

  add(entry: RouteEntry<T>): void {
    this.#all.push(entry);
  }

  seal(): void {
    this.#all.sort(bySpecificity);
    if (this.#all.length < SMALL_BUCKET) return;
    const bySegment = new Map<string, RouteEntry<T>[]>();
    for (const entry of this.#all) {
      const segment = firstSegment(entry.route);
      if (segment === undefined) this.#rest.push(entry);
      else {
        const list = bySegment.get(segment);
        if (list) list.push(entry);
        else bySegment.set(segment, [entry]);
      }
    }
    this.#bySegment = bySegment;
  }

  find(path: string): RouteEntry<T> | undefined {
    if (this.#bySegment === undefined) return firstPathMatch(this.#all, path);
    const end = path.indexOf("/", 1);
    const list = this.#bySegment.get(end === -1 ? path.slice(1) : path.slice(1, end));
    // A route of the segment list that matches always beats one of the rest: a rest
    // literal has no "/" after the first character, so when it matches "/seg…" it is a
    // prefix of "/seg", never longer than a segment route's literal, and loses ties
    // (exact first, then the longer raw path: "/seg" and "/seg/*" beat "/seg*").
    const hit = list && firstPathMatch(list, path);
    return hit ?? (this.#rest.length > 0 ? firstPathMatch(this.#rest, path) : undefined);
  }
}

function bucketOf<T>(map: Map<string, Bucket<T>>, key: string): Bucket<T> {
  let bucket = map.get(key);
  if (!bucket) map.set(key, bucket = new Bucket());
  return bucket;
}

/**
 * Maps `(host, path)` to the value of the most specific matching route.
 *
 * Specificity rule (most specific wins):
 *
 * 1. Host class first: an exact host (`shop.localhost`) beats a suffix (`*.localhost`),
 *    which beats any host (`*`). Between suffixes, the longer one wins
 *    (`*.eu.shop.localhost` beats `*.shop.localhost`). A less specific host class is
 *    only tried when no route of a more specific one matches the path.
 * 2. Within one host class, the longer literal path wins, where a prefix's literal
 *    excludes its `*` and a trailing `/` (`/api/v1/*` beats `/api/*` beats `/*`).
 * 3. At equal length, an exact path beats a prefix (`/hello` beats `/hello/*` for a
 *    request to `/hello`), and `/hello/*` beats `/hello*`.
 *
 * Two routes with identical normalized patterns are ambiguous: the constructor throws
 * (`ERR_CONFIG_INVALID`); use {@linkcode findConflicts} to report them with locations.
 *
 * Lookups normalize the host (lowercase, no port, no trailing dot), then do one `Map`
 * lookup for the exact host, one per dot of the host for suffixes (only when suffix
 * routes exist and the length fits), and scan the presorted routes of each host key
 * (indexed by first path segment when there are many, as with one `*\/<tenant>/*`
 * route per tenant).
 *
 * @example
 * ```ts
 * import { RouteTable } from "./route_table.ts";
 * const table = new RouteTable([
 *   ["hello.localhost/*", "hello"],
 *   ["*\/hello/*", "any-hello"],
 *   ["*.shop.localhost/api/*", "shop-api"],
 * ]);
 * console.log(table.match("Hello.localhost:8787", "/x")); // "hello"
 * console.log(table.match("other.localhost", "/hello")); // "any-hello"
 * console.log(table.match("eu.shop.localhost", "/api/cart")); // "shop-api"
 * console.log(table.match("other.localhost", "/")); // undefined
 * ```
 */
export class RouteTable<T> {
  readonly #exact = new Map<string, Bucket<T>>();
  readonly #suffix = new Map<string, Bucket<T>>();
  readonly #any = new Bucket<T>();
  readonly #entries: readonly RouteEntry<T>[];
  #minSuffix = Infinity;
  #maxSuffix = 0;

  /** Builds the table from `[pattern, value]` pairs; throws on a bad or ambiguous pattern. */
  constructor(pairs: Iterable<readonly [string, T]> = []) {
    const entries = parseAll(pairs);
    const conflicts = conflictsOf(entries);
    if (conflicts.length > 0) {
      const lines = conflicts.map(({ first, second }) =>
        `routes ${JSON.stringify(first.route.pattern)} and ${
          JSON.stringify(second.route.pattern)
        } are identical (ambiguous)`
      );
      throw new WorkyError("ERR_CONFIG_INVALID", lines.join("\n"));
    }
    this.#entries = entries;
    for (const entry of entries) {
      const { hostKind, host } = entry.route;
      if (hostKind === "exact") bucketOf(this.#exact, host).add(entry);
      else if (hostKind === "suffix") {
        bucketOf(this.#suffix, host).add(entry);
        this.#minSuffix = Math.min(this.#minSuffix, host.length);
        this.#maxSuffix = Math.max(this.#maxSuffix, host.length);
      } else this.#any.add(entry);
    }
    for (const bucket of this.#exact.values()) bucket.seal();
    for (const bucket of this.#suffix.values()) bucket.seal();
    this.#any.seal();
  }

  /** Number of routes. */
  get size(): number {
    return this.#entries.length;
  }

  /** All entries, in input order. */
  entries(): readonly RouteEntry<T>[] {
    return this.#entries;
  }

  /**
   * The most specific entry matching `host` (any case, with or without `:port`) and
   * `path` (a URL pathname), or `undefined`.
   */
  lookup(host: string, path: string): RouteEntry<T> | undefined {
    const hostname = normalizeHost(host);
    const exact = this.#exact.get(hostname)?.find(path);
    if (exact) return exact;
    if (this.#suffix.size > 0) {
      // Walk the dots left to right: longer suffixes first. Skip the first character so
      // that the subdomain label is never empty.
      for (let dot = hostname.indexOf(".", 1); dot !== -1; dot = hostname.indexOf(".", dot + 1)) {
        const len = hostname.length - dot;
        if (len > this.#maxSuffix) continue;
        if (len < this.#minSuffix) break;
        const hit = this.#suffix.get(hostname.slice(dot))?.find(path);
        if (hit) return hit;
      }
    }
    return this.#any.find(path);
  }

  /** The value of the most specific route matching `host` and `path`, or `undefined`. */
  match(host: string, path: string): T | undefined {
    return this.lookup(host, path)?.value;
  }
}
