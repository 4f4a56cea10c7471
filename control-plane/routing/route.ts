/**
 * Route patterns: parsing, normalization and matching of one `host/path` pattern.
 *
 * Syntax (Cloudflare-like):
 *
 * - host: an exact hostname (`hello.localhost`, `127.0.0.1`, `[::1]`), `*` (any host) or
 *   `*.suffix` (any subdomain of `suffix`, not `suffix` itself). No scheme, no `:port`:
 *   matching ignores the port. Hosts compare case-insensitively.
 * - path: an exact path (`/health`) or a prefix ending with `*` (`/*`, `/hello/*`, `/img*`).
 *   Paths compare case-sensitively. A prefix that ends with `/` also matches the bare path
 *   without the slash: `/hello/*` matches `/hello`, `/hello/` and `/hello/x`.
 *
 * @module
 */

import { WorkyError } from "../../runtime/errors.ts";

/** How a route's host part matches. */
export type HostKind = "exact" | "suffix" | "any";

/** How a route's path part matches. */
export type PathKind = "exact" | "prefix";

/** A parsed, normalized route pattern. */
export interface Route {
  /** The pattern as written. */
  readonly pattern: string;
  /** Canonical form (host lowercased); two routes are identical when this is equal. */
  readonly normalized: string;
  readonly hostKind: HostKind;
  /**
   * `exact`: the lowercased hostname; `suffix`: the suffix with its leading dot
   * (`*.shop.localhost` → `.shop.localhost`); `any`: `*`.
   */
  readonly host: string;
  readonly pathKind: PathKind;
  /** `exact`: the path; `prefix`: the prefix without the trailing `*` (`/hello/`). */
  readonly path: string;
  /**
   * For a prefix ending with `/` (other than `/`): the prefix without that slash, which
   * also matches (`/hello/*` → `/hello`). Otherwise `undefined`.
   */
  readonly barePath: string | undefined;
  /**
   * Path specificity used to order routes of the same host class: the length of the
   * literal part (exact path, or prefix without a trailing `/`). Larger is more specific.
   */
  readonly pathWeight: number;
}

const EXAMPLE = "shop.localhost/*";
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;
const BAD_PATH_CHAR = /[\s?#]/;

function invalid(pattern: string, why: string): WorkyError {
  return new WorkyError("ERR_CONFIG_INVALID", `${JSON.stringify(pattern)} is not a route${why}`);
}

function isHostname(host: string): boolean {
  if (host.length > 253) return false;
  if (IPV6.test(host)) return true;
  for (const label of host.split(".")) if (!LABEL.test(label)) return false;
  return true;
}

/**
 * Parses a route pattern such as `hello.localhost/*`, `*\/hello/*` or
 * `*.shop.localhost/api/*`.
 *
 * Throws a {@linkcode WorkyError} with code `ERR_CONFIG_INVALID` whose message names the
 * pattern and what is wrong; callers prefix the location (`worky.toml:3: tenants.a.routes[0]: `).
 *
 * @example
 * ```ts
 * import { parseRoute } from "./route.ts";
 * const route = parseRoute("*.Shop.localhost/api/*");
 * console.log(route.hostKind, route.host, route.path); // "suffix" ".shop.localhost" "/api/"
 * ```
 */
export function parseRoute(pattern: string): Route {
  if (typeof pattern !== "string") throw invalid(String(pattern), " (expected a string)");
  if (SCHEME.test(pattern)) {
    const rest = pattern.replace(SCHEME, "");
    throw invalid(
      pattern,
      `: routes have no scheme (write ${JSON.stringify(rest.includes("/") ? rest : `${rest}/*`)})`,
    );
  }
  const slash = pattern.indexOf("/");
  if (slash === -1) {
    const hint = pattern === "" || /[\s*/:]/.test(pattern)
      ? EXAMPLE
      : pattern.includes(".")
      ? `${pattern}/*`
      : `${pattern}.localhost/*`;
    throw invalid(pattern, ` (expected host/path pattern like ${JSON.stringify(hint)})`);
  }
  const rawHost = pattern.slice(0, slash);
  const path = pattern.slice(slash);
  if (rawHost === "") {
    throw invalid(
      pattern,
      `: it has no host (use ${JSON.stringify(`*${path}`)} to match any host)`,
    );
  }
  const host = rawHost.toLowerCase();
  let hostKind: HostKind;
  let hostKey: string;
  if (host === "*") {
    hostKind = "any";
    hostKey = "*";
  } else if (host.startsWith("*.")) {
    hostKind = "suffix";
    hostKey = host.slice(1);
    if (hostKey.includes("*") || !isHostname(hostKey.slice(1))) {
      throw invalid(pattern, `: ${JSON.stringify(rawHost)} is not a host pattern`);
    }
  } else {
    hostKind = "exact";
    hostKey = host;
    if (host.includes("*")) {
      throw invalid(
        pattern,
        `: "*" in a host must be the whole host or its first label (like "*.shop.localhost")`,
      );
    }
    if (!host.startsWith("[") && host.includes(":")) {
      throw invalid(
        pattern,
        `: ports are not allowed (matching ignores the port; write ${
          JSON.stringify(rawHost.slice(0, rawHost.indexOf(":")) + path)
        })`,
      );
    }
    if (!isHostname(host)) {
      throw invalid(pattern, `: ${JSON.stringify(rawHost)} is not a valid hostname`);
    }
  }
  if (BAD_PATH_CHAR.test(path)) {
    throw invalid(pattern, ": the path must not contain spaces, '?' or '#'");
  }
  const star = path.indexOf("*");
  if (star !== -1 && star !== path.length - 1) {
    throw invalid(pattern, `: "*" is only allowed at the end of the path (like "/api/*")`);
  }
  const pathKind: PathKind = star === -1 ? "exact" : "prefix";
  const literal = pathKind === "prefix" ? path.slice(0, -1) : path;
  const barePath = pathKind === "prefix" && literal.length > 1 && literal.endsWith("/")
    ? literal.slice(0, -1)
    : undefined;
  return {
    pattern,
    normalized: host + path,
    hostKind,
    host: hostKey,
    pathKind,
    path: literal,
    barePath,
    pathWeight: barePath !== undefined ? barePath.length : literal.length,
  };
}

/**
 * Lowercases a request host and strips its port and trailing dot
 * (`Hello.Localhost:8787` → `hello.localhost`, `[::1]:80` → `[::1]`).
 * Returns the input itself when it is already normalized (no allocation).
 */
export function normalizeHost(host: string): string {
  let end = host.length;
  let upper = false;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf("]");
    if (close !== -1) end = close + 1;
  } else {
    for (let i = 0; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c === 58 /* : */) {
        end = i;
        break;
      }
      if (c >= 65 && c <= 90) upper = true;
    }
    if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  }
  const cut = end === host.length ? host : host.slice(0, end);
  return upper || cut.charCodeAt(0) === 91 ? cut.toLowerCase() : cut;
}

/** True when `route`'s path part matches `path` (a URL pathname). */
function pathMatches(route: Route, path: string): boolean {
  if (route.pathKind === "exact") return path === route.path;
  return path.startsWith(route.path) || path === route.barePath;
}

/** True when `route`'s host part matches `hostname` (already {@linkcode normalizeHost}d). */
function hostMatches(route: Route, hostname: string): boolean {
  switch (route.hostKind) {
    case "any":
      return true;
    case "exact":
      return hostname === route.host;
    case "suffix":
      return hostname.length > route.host.length && hostname.endsWith(route.host);
  }
}

/**
 * True when `route` matches a request to `host` (any case, port ignored) and `path`.
 *
 * @example
 * ```ts
 * import { parseRoute, routeMatches } from "./route.ts";
 * console.log(routeMatches(parseRoute("*\/hello/*"), "x.localhost:8787", "/hello")); // true
 * ```
 */
export function routeMatches(route: Route, host: string, path: string): boolean {
  return hostMatches(route, normalizeHost(host)) && pathMatches(route, path);
}
