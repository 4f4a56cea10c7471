import { describe, expect, it } from "vitest";
import { findConflicts, RouteTable } from "../../../control-plane/routing/route_table.ts";
import { parseRoute, type Route, routeMatches } from "../../../control-plane/routing/route.ts";
import { WorkyError } from "../../../runtime/errors.ts";

/** The specificity rule, spelled out as a tuple (larger wins), for a brute-force reference. */
function rank(route: Route): number[] {
  const hostClass = route.hostKind === "exact" ? 2 : route.hostKind === "suffix" ? 1 : 0;
  return [
    hostClass,
    route.hostKind === "suffix" ? route.host.length : 0,
    route.pathWeight,
    route.pathKind === "exact" ? 1 : 0,
    route.path.length,
  ];
}

function bruteForce(patterns: string[], host: string, path: string): string | undefined {
  let best: { pattern: string; rank: number[] } | undefined;
  for (const pattern of patterns) {
    const route = parseRoute(pattern);
    if (!routeMatches(route, host, path)) continue;
    const r = rank(route);
    const i = best ? r.findIndex((v, k) => v !== best!.rank[k]) : 0;
    if (!best || (i !== -1 && r[i] > best.rank[i])) best = { pattern, rank: r };
  }
  return best?.pattern;
}

describe("RouteTable", () => {
  it("returns undefined when nothing matches (and for an empty table)", () => {
    expect(new RouteTable([]).match("a.localhost", "/")).toBeUndefined();
    const table = new RouteTable([["a.localhost/*", "a"], ["*/api/*", "api"]]);
    expect(table.match("b.localhost", "/")).toBeUndefined();
    expect(table.match("b.localhost", "/apis")).toBeUndefined();
    expect(table.size).toBe(2);
  });

  it("prefers an exact host over a suffix over any host", () => {
    const table = new RouteTable([
      ["*/*", "any"],
      ["*.shop.localhost/*", "suffix"],
      ["eu.shop.localhost/*", "exact"],
    ]);
    expect(table.match("eu.shop.localhost", "/x")).toBe("exact");
    expect(table.match("us.shop.localhost", "/x")).toBe("suffix");
    expect(table.match("shop.localhost", "/x")).toBe("any");
    expect(table.match("other.localhost", "/x")).toBe("any");
  });

  it("prefers the host class over path length", () => {
    const table = new RouteTable([
      ["hello.localhost/*", "host"],
      ["*/hello/*", "path"],
    ]);
    expect(table.match("hello.localhost", "/hello/x")).toBe("host");
    expect(table.match("other.localhost", "/hello/x")).toBe("path");
  });

  it("falls back to a less specific host class when the path doesn't match", () => {
    const table = new RouteTable([
      ["shop.localhost/api/*", "shop-api"],
      ["*.localhost/static/*", "static"],
      ["*/*", "fallback"],
    ]);
    expect(table.match("shop.localhost", "/api/cart")).toBe("shop-api");
    expect(table.match("shop.localhost", "/static/a.css")).toBe("static");
    expect(table.match("shop.localhost", "/")).toBe("fallback");
  });

  it("prefers the longer suffix", () => {
    const table = new RouteTable([
      ["*.localhost/*", "short"],
      ["*.shop.localhost/*", "long"],
    ]);
    expect(table.match("a.shop.localhost", "/")).toBe("long");
    expect(table.match("a.b.shop.localhost", "/")).toBe("long");
    expect(table.match("shop.localhost", "/")).toBe("short");
    expect(table.match("a.localhost", "/")).toBe("short");
    expect(table.match("localhost", "/")).toBeUndefined();
  });

  it("prefers the longer path prefix, whatever the input order", () => {
    const pairs: [string, string][] = [
      ["*/*", "root"],
      ["*/api/*", "api"],
      ["*/api/v1/*", "v1"],
    ];
    for (const order of [pairs, [...pairs].reverse()]) {
      const table = new RouteTable(order);
      expect(table.match("x", "/api/v1/users")).toBe("v1");
      expect(table.match("x", "/api/v1")).toBe("v1");
      expect(table.match("x", "/api/v2")).toBe("api");
      expect(table.match("x", "/api")).toBe("api");
      expect(table.match("x", "/apis")).toBe("root");
    }
  });

  it("prefers an exact path over a prefix of the same length", () => {
    const table = new RouteTable([
      ["*/hello/*", "prefix"],
      ["*/hello", "exact"],
      ["*/hello*", "loose"],
      ["*/hello/", "exact-slash"],
    ]);
    expect(table.match("x", "/hello")).toBe("exact");
    expect(table.match("x", "/hello/")).toBe("exact-slash");
    expect(table.match("x", "/hello/x")).toBe("prefix");
    expect(table.match("x", "/helloworld")).toBe("loose");
  });

  it("matches hosts case-insensitively, paths case-sensitively", () => {
    const table = new RouteTable([["Hello.Localhost/Docs/*", "docs"]]);
    expect(table.match("HELLO.localhost", "/Docs/a")).toBe("docs");
    expect(table.match("hello.localhost", "/docs/a")).toBeUndefined();
  });

  it("ignores the port and a trailing dot of the request host", () => {
    const table = new RouteTable([
      ["hello.localhost/*", "hello"],
      ["*.shop.localhost/*", "shop"],
    ]);
    expect(table.match("hello.localhost:8787", "/")).toBe("hello");
    expect(table.match("hello.localhost.", "/")).toBe("hello");
    expect(table.match("EU.shop.localhost:443", "/")).toBe("shop");
  });

  it("exposes the matched entry", () => {
    const table = new RouteTable([["a.localhost/*", 1], ["*/b/*", 2]]);
    const entry = table.lookup("x", "/b/c");
    expect(entry?.value).toBe(2);
    expect(entry?.index).toBe(1);
    expect(entry?.route.pattern).toBe("*/b/*");
    expect(table.entries().map((e) => e.value)).toEqual([1, 2]);
  });

  it("throws on a bad pattern", () => {
    expect(() => new RouteTable([["shop", 1]])).toThrow(/"shop" is not a route/);
  });

  it("throws ERR_CONFIG_INVALID on identical routes", () => {
    let error: unknown;
    try {
      new RouteTable([["a.localhost/*", 1], ["A.LOCALHOST/*", 2]]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WorkyError);
    expect((error as WorkyError).code).toBe("ERR_CONFIG_INVALID");
    expect((error as WorkyError).message).toBe(
      'routes "a.localhost/*" and "A.LOCALHOST/*" are identical (ambiguous)',
    );
  });
});

describe("RouteTable: many routes (indexed buckets)", () => {
  const patterns: string[] = [
    "*/*",
    "*/img*",
    "*/health",
    "*/a",
    "*.localhost/*",
    "*.t1.localhost/x/*",
  ];
  for (let i = 0; i < 40; i++) {
    patterns.push(`*/t${i}/*`, `t${i}.localhost/*`, `t${i}.localhost/api/*`, `*/t${i}/api/v1/*`);
    if (i % 3 === 0) {
      patterns.push(`*/t${i}`, `*/t${i}*`, `*/t${i}/api/`, `t${i}.localhost/t${i}/*`);
    }
  }
  const table = new RouteTable(patterns.map((p) => [p, p]));
  const hosts = ["t1.localhost", "T3.localhost:8787", "x.t1.localhost", "a.b.localhost", "other"];
  const paths = [
    "",
    "/",
    "/t1",
    "/t1/",
    "/t12",
    "/t3/api/",
    "/t3/api",
    "/t3/api/v1",
    "/t3/api/v1/x",
    "/t0/t0/x",
    "/t39x",
    "/img",
    "/imgs/a",
    "/health",
    "/health/",
    "/a",
    "/a/b",
    "/x/y",
    "/api/z",
  ];

  it("agrees with a brute-force scan of every route", () => {
    let checked = 0;
    for (const host of hosts) {
      for (const path of paths) {
        expect(table.match(host, path), `${host} ${path}`).toBe(bruteForce(patterns, host, path));
        checked++;
      }
    }
    expect(checked).toBe(hosts.length * paths.length);
  });

  it("picks the most specific of the segment index and the rest", () => {
    expect(table.match("other", "/t3")).toBe("*/t3");
    expect(table.match("other", "/t3x")).toBe("*/t3*");
    expect(table.match("other", "/t4")).toBe("*/t4/*");
    expect(table.match("other", "/t4x")).toBe("*/*");
    expect(table.match("t0.localhost", "/t0/a")).toBe("t0.localhost/t0/*");
  });
});

describe("findConflicts", () => {
  it("reports each later duplicate against the first", () => {
    const conflicts = findConflicts([
      ["a.localhost/*", "t1"],
      ["*/x/*", "t1"],
      ["A.localhost/*", "t2"],
      ["a.localhost/*", "t3"],
    ]);
    expect(conflicts.map((c) => [c.normalized, c.first.value, c.second.value, c.second.index]))
      .toEqual([
        ["a.localhost/*", "t1", "t2", 2],
        ["a.localhost/*", "t1", "t3", 3],
      ]);
  });

  it("does not treat overlapping but different routes as conflicts", () => {
    expect(findConflicts([["*/*", 1], ["a/*", 2], ["*/a/*", 3], ["*/a*", 4], ["*/a/", 5]]))
      .toEqual([]);
  });
});
