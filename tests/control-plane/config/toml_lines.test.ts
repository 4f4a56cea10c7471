import { describe, expect, it } from "vitest";
import { parse } from "smol-toml";
import { formatKeyPath, indexTomlLines } from "../../../control-plane/config/_toml_lines.ts";

const TEXT = [
  /* 1 */ "# comment [not.a.table]",
  /* 2 */ 'title = "a # not a comment"',
  /* 3 */ "[server]",
  /* 4 */ "port = 8787 # trailing",
  /* 5 */ "",
  /* 6 */ "[tenants.shop]",
  /* 7 */ "routes = [",
  /* 8 */ '  "shop.localhost/*", # first',
  /* 9 */ "  # between",
  /* 10 */ '  "*/shop/*",',
  /* 11 */ "]",
  /* 12 */ 'vars = { A = 1, "b c" = { d = [1, 2] }, E = """',
  /* 13 */ "multi",
  /* 14 */ 'line""" }',
  /* 15 */ "limits.timeout_ms = 5",
  /* 16 */ "",
  /* 17 */ '[tenants."odd name".permissions]',
  /* 18 */ "net = true",
  /* 19 */ "[[tenants.shop.cron]]",
  /* 20 */ 'schedule = "* * * * *"',
  /* 21 */ "[[tenants.shop.cron]]",
  /* 22 */ 'schedule = "0 * * * *"',
  /* 23 */ "[tenants.shop.cron.options]",
  /* 24 */ "x = 1",
  /* 25 */ "[tenants.dotted]",
  /* 26 */ "a.b.c = 'x' # 'literal'",
  /* 27 */ "d = 1979-05-27 07:32:00Z",
  /* 28 */ "e = '''",
  /* 29 */ "[not.a.header]",
  /* 30 */ "'''",
  /* 31 */ "f = 1",
].join("\n");

describe("indexTomlLines", () => {
  const lines = indexTomlLines(TEXT);
  const at = (...path: (string | number)[]) => lines.lineOf(path);

  it("indexes valid TOML (sanity check of the fixture)", () => {
    expect(() => parse(TEXT)).not.toThrow();
  });

  it("finds keys, table headers and implicit tables", () => {
    expect(at("title")).toBe(2);
    expect(at("server")).toBe(3);
    expect(at("server", "port")).toBe(4);
    expect(at("tenants")).toBe(6);
    expect(at("tenants", "shop")).toBe(6);
  });

  it("finds elements of arrays spanning lines", () => {
    expect(at("tenants", "shop", "routes")).toBe(7);
    expect(at("tenants", "shop", "routes", 0)).toBe(8);
    expect(at("tenants", "shop", "routes", 1)).toBe(10);
  });

  it("finds keys of inline tables, nested, and values after multi-line strings", () => {
    expect(at("tenants", "shop", "vars", "A")).toBe(12);
    expect(at("tenants", "shop", "vars", "b c", "d", 1)).toBe(12);
    expect(at("tenants", "shop", "vars", "E")).toBe(12);
    expect(at("tenants", "shop", "limits", "timeout_ms")).toBe(15);
    expect(at("tenants", "shop", "limits")).toBe(15);
  });

  it("finds quoted keys in headers", () => {
    expect(at("tenants", "odd name")).toBe(17);
    expect(at("tenants", "odd name", "permissions", "net")).toBe(18);
  });

  it("indexes arrays of tables and their sub-tables", () => {
    expect(at("tenants", "shop", "cron")).toBe(19);
    expect(at("tenants", "shop", "cron", 0, "schedule")).toBe(20);
    expect(at("tenants", "shop", "cron", 1)).toBe(21);
    expect(at("tenants", "shop", "cron", 1, "schedule")).toBe(22);
    expect(at("tenants", "shop", "cron", 1, "options", "x")).toBe(24);
  });

  it("handles dotted keys, dates and multi-line literal strings", () => {
    expect(at("tenants", "dotted", "a", "b", "c")).toBe(26);
    expect(at("tenants", "dotted", "a")).toBe(26);
    expect(at("tenants", "dotted", "d")).toBe(27);
    expect(at("tenants", "dotted", "f")).toBe(31);
    expect(at("not")).toBe(1);
  });

  it("falls back to the closest enclosing key, then to line 1", () => {
    expect(at("tenants", "shop", "module")).toBe(6);
    expect(at("tenants", "shop", "routes", 7)).toBe(7);
    expect(at("tenants", "nope", "module")).toBe(6);
    expect(at("nope")).toBe(1);
  });

  it("never throws on text that isn't valid TOML", () => {
    expect(() => indexTomlLines('[a\nb = "unterminated\n{ = ]').lineOf(["a", "b"])).not.toThrow();
  });
});

describe("formatKeyPath", () => {
  it("formats keys, indices and odd keys", () => {
    expect(formatKeyPath(["tenants", "shop", "routes", 0])).toBe("tenants.shop.routes[0]");
    expect(formatKeyPath(["tenants", "odd name", "module"])).toBe('tenants."odd name".module');
    expect(formatKeyPath([])).toBe("");
  });
});
