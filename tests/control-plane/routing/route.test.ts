import { describe, expect, it } from "vitest";
import { normalizeHost, parseRoute, routeMatches } from "../../../control-plane/routing/route.ts";
import { WorkyError } from "../../../runtime/errors.ts";

function parseError(pattern: string): WorkyError {
  try {
    parseRoute(pattern);
  } catch (error) {
    expect(error).toBeInstanceOf(WorkyError);
    expect((error as WorkyError).code).toBe("ERR_CONFIG_INVALID");
    return error as WorkyError;
  }
  throw new Error(`expected ${pattern} to be rejected`);
}

describe("parseRoute", () => {
  it("parses an exact host with a prefix path", () => {
    expect(parseRoute("Hello.Localhost/*")).toEqual({
      pattern: "Hello.Localhost/*",
      normalized: "hello.localhost/*",
      hostKind: "exact",
      host: "hello.localhost",
      pathKind: "prefix",
      path: "/",
      barePath: undefined,
      pathWeight: 1,
    });
  });

  it("parses any host with a directory prefix", () => {
    const route = parseRoute("*/hello/*");
    expect(route.hostKind).toBe("any");
    expect(route.host).toBe("*");
    expect(route.path).toBe("/hello/");
    expect(route.barePath).toBe("/hello");
    expect(route.pathWeight).toBe(6);
  });

  it("parses a suffix host and keeps the leading dot", () => {
    const route = parseRoute("*.Shop.localhost/api/*");
    expect(route.hostKind).toBe("suffix");
    expect(route.host).toBe(".shop.localhost");
    expect(route.normalized).toBe("*.shop.localhost/api/*");
  });

  it("parses exact paths, IPs and bracketed IPv6", () => {
    expect(parseRoute("*/health")).toMatchObject({ pathKind: "exact", path: "/health" });
    expect(parseRoute("127.0.0.1/*").host).toBe("127.0.0.1");
    expect(parseRoute("[::1]/*").host).toBe("[::1]");
  });

  it("keeps path case (paths are case-sensitive)", () => {
    expect(parseRoute("a.localhost/API/*").normalized).toBe("a.localhost/API/*");
  });

  it("rejects a bare name with a hint built from it", () => {
    expect(parseError("shop").message).toBe(
      '"shop" is not a route (expected host/path pattern like "shop.localhost/*")',
    );
    expect(parseError("shop.example.com").message).toBe(
      '"shop.example.com" is not a route (expected host/path pattern like "shop.example.com/*")',
    );
    expect(parseError("").message).toContain('like "shop.localhost/*"');
  });

  it("rejects ports, schemes, missing hosts and misplaced wildcards", () => {
    expect(parseError("a.localhost:8787/*").message).toContain("ports are not allowed");
    expect(parseError("a.localhost:8787/*").message).toContain('write "a.localhost/*"');
    expect(parseError("https://a.localhost/*").message).toContain("routes have no scheme");
    expect(parseError("/hello/*").message).toContain('use "*/hello/*"');
    expect(parseError("a*.localhost/*").message).toContain('"*" in a host');
    expect(parseError("a.*.localhost/*").message).toContain('"*" in a host');
    expect(parseError("*.*.localhost/*").message).toContain("is not a host pattern");
    expect(parseError("*./*").message).toContain("is not a host pattern");
    expect(parseError("*/a/*/b").message).toContain('"*" is only allowed at the end');
    expect(parseError("*/a?b=1").message).toContain("must not contain");
    expect(parseError("bad host/*").message).toContain("is not a valid hostname");
    expect(parseError("-a.localhost/*").message).toContain("is not a valid hostname");
  });
});

describe("normalizeHost", () => {
  it("lowercases and strips the port and a trailing dot", () => {
    expect(normalizeHost("Hello.Localhost:8787")).toBe("hello.localhost");
    expect(normalizeHost("hello.localhost.")).toBe("hello.localhost");
    expect(normalizeHost("hello.localhost.:80")).toBe("hello.localhost");
    expect(normalizeHost("[::1]:8080")).toBe("[::1]");
    expect(normalizeHost("[FE80::1]")).toBe("[fe80::1]");
  });

  it("returns an already normalized host unchanged", () => {
    const host = "hello.localhost";
    expect(normalizeHost(host)).toBe(host);
  });
});

describe("routeMatches", () => {
  it("matches a directory prefix with and without the trailing slash", () => {
    const route = parseRoute("*/hello/*");
    expect(routeMatches(route, "x", "/hello")).toBe(true);
    expect(routeMatches(route, "x", "/hello/")).toBe(true);
    expect(routeMatches(route, "x", "/hello/a/b")).toBe(true);
    expect(routeMatches(route, "x", "/hellos")).toBe(false);
    expect(routeMatches(route, "x", "/")).toBe(false);
  });

  it("matches a plain string prefix", () => {
    const route = parseRoute("*/img*");
    expect(routeMatches(route, "x", "/img")).toBe(true);
    expect(routeMatches(route, "x", "/imgs/a.png")).toBe(true);
    expect(routeMatches(route, "x", "/im")).toBe(false);
  });

  it("matches an exact path only exactly", () => {
    const route = parseRoute("*/health");
    expect(routeMatches(route, "x", "/health")).toBe(true);
    expect(routeMatches(route, "x", "/health/")).toBe(false);
    expect(routeMatches(route, "x", "/healthz")).toBe(false);
  });

  it("matches subdomains for a suffix, not the suffix itself", () => {
    const route = parseRoute("*.shop.localhost/*");
    expect(routeMatches(route, "eu.shop.localhost", "/")).toBe(true);
    expect(routeMatches(route, "a.b.SHOP.localhost:8787", "/")).toBe(true);
    expect(routeMatches(route, "shop.localhost", "/")).toBe(false);
    expect(routeMatches(route, "xshop.localhost", "/")).toBe(false);
  });
});
