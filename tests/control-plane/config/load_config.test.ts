import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  loadConfig,
  parseConfig,
  parseConfigObject,
  tenantSchema,
} from "../../../control-plane/config/load_config.ts";
import type { WorkyConfig } from "../../../control-plane/config/types.ts";
import { WorkyError } from "../../../runtime/errors.ts";

let dir: string;

beforeEach(async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-config-" });
  await write("mod.ts", "export default {};\n");
});

afterEach(async () => {
  await Deno.remove(dir, { recursive: true });
});

async function write(rel: string, content: string): Promise<void> {
  const path = `${dir}/${rel}`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, content);
}

/** Joins lines, so that line numbers in assertions are easy to count. */
function toml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

async function load(
  text: string,
  env: Record<string, string | undefined> = {},
): Promise<WorkyConfig> {
  await write("worky.toml", text);
  return loadConfig(`${dir}/worky.toml`, { env });
}

/** Loads `text`, expects a config error and returns its message lines. */
async function errors(text: string): Promise<string[]> {
  let error: unknown;
  try {
    await load(text);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(WorkyError);
  expect((error as WorkyError).code).toBe("ERR_CONFIG_INVALID");
  return (error as WorkyError).message.split("\n");
}

const TENANT_A = ["[tenants.a]", 'module = "mod.ts"', 'routes = ["a.localhost/*"]'];

/** Every limit's default, as documented in README.md. */
const DEFAULT_LIMITS = {
  timeoutMs: 30_000,
  cpuMs: 30_000,
  maxWorkers: 2,
  maxConcurrencyPerWorker: 64,
  minWorkers: 0,
  idleTimeoutMs: 60_000,
  memoryMb: 128,
  subrequests: 1000,
  maxConcurrentRequests: 256,
  queueMs: 1000,
  maxBodyBytes: 104_857_600,
  maxHeaderBytes: 32_768,
  requestsPerSecond: 0,
  requestsPerSecondPerIp: 0,
};
/** Every permission key, denied: what a tenant gets for permissions it does not write. */
const DENIED = {
  read: false,
  write: false,
  net: false,
  env: false,
  run: false,
  ffi: false,
  sys: false,
  import: false,
};
/** The defaults of the feature keys (cron, queues, Durable Objects, egress). */
const DEFAULT_FEATURES = {
  cron: [],
  queues: {},
  queueConsumers: [],
  durableObjects: {},
  egress: { allowPrivate: [] },
};

describe("loadConfig: valid files", () => {
  it("loads a full config", async () => {
    await write("examples/hello/mod.ts", "export default {};\n");
    await write("shop/main.ts", "export default {};\n");
    const config = await load(toml(
      "[server]",
      'hostname = "0.0.0.0"',
      "port = 0",
      'data_dir = "state"',
      'db_url = "libsql://db.example.com"',
      "",
      "[tenants.zeta]",
      'module = "shop/main.ts"',
      'routes = ["*.shop.localhost/api/*"]',
      "",
      "[tenants.hello]",
      'module = "examples/hello/mod.ts"',
      'routes = ["hello.localhost/*", "*/hello/*"]',
      'kv = ["CART", "_cache2"]',
      'vars = { CURRENCY = "EUR", RATE = 1.5, DEBUG = true, LIST = [1, "a"], NESTED = { k = { j = 2 } } }',
      "",
      "[tenants.hello.permissions]",
      'net = ["api.example.com:443", "localhost"]',
      'read = ["./data", "/etc/hosts"]',
      'write = ["data/out"]',
      'env = ["TZ"]',
      "sys = true",
      "ffi = []",
      "",
      "[tenants.hello.limits]",
      "timeout_ms = 10000",
      "max_workers = 4",
      "max_concurrency_per_worker = 1",
    ));
    expect(config).toEqual({
      path: `${dir}/worky.toml`,
      dir,
      server: {
        hostname: "0.0.0.0",
        port: 0,
        dataDir: `${dir}/state`,
        dbUrl: "libsql://db.example.com",
      },
      registry: { trustedKeys: [] },
      tenants: [
        {
          name: "hello",
          module: `${dir}/examples/hello/mod.ts`,
          routes: ["hello.localhost/*", "*/hello/*"],
          kv: ["CART", "_cache2"],
          vars: {
            CURRENCY: "EUR",
            RATE: 1.5,
            DEBUG: true,
            LIST: [1, "a"],
            NESTED: { k: { j: 2 } },
          },
          permissions: {
            ...DENIED,
            net: ["api.example.com:443", "localhost"],
            read: [`${dir}/data`, "/etc/hosts"],
            write: [`${dir}/data/out`],
            env: ["TZ"],
            sys: true,
          },
          limits: {
            ...DEFAULT_LIMITS,
            timeoutMs: 10_000,
            maxWorkers: 4,
            maxConcurrencyPerWorker: 1,
          },
          ...DEFAULT_FEATURES,
        },
        {
          name: "zeta",
          module: `${dir}/shop/main.ts`,
          routes: ["*.shop.localhost/api/*"],
          kv: [],
          vars: {},
          permissions: DENIED,
          limits: DEFAULT_LIMITS,
          ...DEFAULT_FEATURES,
        },
      ],
    });
    // vars come out as plain JSON data (TOML tables have a null prototype)
    expect(Object.getPrototypeOf(config.tenants[0].vars.NESTED)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
  });

  it("fills defaults", async () => {
    const config = await load(toml(...TENANT_A));
    expect(config.server).toEqual({
      hostname: "127.0.0.1",
      port: 8787,
      dataDir: `${dir}/.worky`,
      dbUrl: `file:${dir}/.worky/worky.db`,
    });
    expect(config.tenants).toEqual([{
      name: "a",
      module: `${dir}/mod.ts`,
      routes: ["a.localhost/*"],
      kv: [],
      vars: {},
      permissions: DENIED,
      limits: DEFAULT_LIMITS,
      ...DEFAULT_FEATURES,
    }]);
  });

  it("accepts an empty file (no tenants)", async () => {
    const config = await load("# nothing yet\n");
    expect(config.tenants).toEqual([]);
    expect(config.server.port).toBe(8787);
  });

  it("lets WORKY_DB_URL win over db_url, and ignores it when empty", async () => {
    const text = toml("[server]", 'db_url = "file:/tmp/from-toml.db"');
    expect((await load(text, { WORKY_DB_URL: "libsql://env" })).server.dbUrl).toBe(
      "libsql://env",
    );
    expect((await load(text, { WORKY_DB_URL: "" })).server.dbUrl).toBe("file:/tmp/from-toml.db");
    expect((await load("", { WORKY_DB_URL: "libsql://env" })).server.dbUrl).toBe("libsql://env");
  });

  it("accepts tenants written with dotted keys and inline tables", async () => {
    const config = await load(toml(
      "[tenants]",
      'a = { module = "mod.ts", routes = ["a.localhost/*"], limits = { max_workers = 3 } }',
      'b.module = "mod.ts"',
      'b.routes = ["b.localhost/*"]',
      "b.permissions.net = true",
    ));
    expect(config.tenants.map((t) => t.name)).toEqual(["a", "b"]);
    expect(config.tenants[0].limits.maxWorkers).toBe(3);
    expect(config.tenants[1].permissions.net).toBe(true);
  });
});

describe("loadConfig: invalid files", () => {
  it("reports an unknown top-level key", async () => {
    expect(await errors(toml(...TENANT_A, "", "[srever]", "port = 1"))).toEqual([
      "worky.toml:5: srever: unknown key (expected one of: server, registry, tenants)",
    ]);
  });

  it("reports unknown keys in server, tenant, permissions and limits", async () => {
    expect(
      await errors(toml(
        "[server]",
        "prot = 1",
        ...TENANT_A,
        "modules = []",
        "[tenants.a.permissions]",
        "network = true",
        "[tenants.a.limits]",
        "timeout = 5",
      )),
    ).toEqual([
      "worky.toml:2: server.prot: unknown key (expected one of: hostname, port, data_dir, db_url)",
      "worky.toml:6: tenants.a.modules: unknown key (expected one of: module, routes, kv, vars, permissions, limits, egress, cron, queues, queue_consumers, durable_objects)",
      "worky.toml:8: tenants.a.permissions.network: unknown key (expected one of: read, write, net, env, run, ffi, sys, import)",
      "worky.toml:10: tenants.a.limits.timeout: unknown key (expected one of: timeout_ms, cpu_ms, max_workers, max_concurrency_per_worker, min_workers, idle_timeout_ms, isolation, memory_mb, subrequests, max_concurrent_requests, queue_ms, max_body_bytes, max_header_bytes, requests_per_second, requests_per_second_per_ip)",
    ]);
  });

  it("reports wrong types", async () => {
    expect(
      await errors(toml(
        "[server]",
        "hostname = 1",
        "[tenants.a]",
        "module = true",
        'routes = "a.localhost/*"',
        'kv = "CART"',
        "vars = [1]",
        "[tenants.a.permissions]",
        'net = "api.example.com"',
        'read = ["a", 1]',
        "[tenants.a.limits]",
        'timeout_ms = "10s"',
      )),
    ).toEqual([
      "worky.toml:2: server.hostname: expected a string, got 1",
      "worky.toml:4: tenants.a.module: expected a string, got true",
      'worky.toml:5: tenants.a.routes: expected an array, got "a.localhost/*"',
      'worky.toml:6: tenants.a.kv: expected an array, got "CART"',
      "worky.toml:7: tenants.a.vars: expected a table, got an array",
      'worky.toml:9: tenants.a.permissions.net: expected true, false or a list of strings, got "api.example.com"',
      "worky.toml:10: tenants.a.permissions.read: item 1 must be a non-empty string, got 1",
      'worky.toml:12: tenants.a.limits.timeout_ms: must be an integer from 1 to 600000, got "10s"',
    ]);
  });

  it("reports a tenant that isn't a table", async () => {
    expect(await errors(toml("[tenants]", 'a = "mod.ts"'))).toEqual([
      'worky.toml:2: tenants.a: expected a table, got "mod.ts"',
    ]);
  });

  it("reports missing required keys at the table header", async () => {
    expect(await errors(toml("", "[tenants.a]", "kv = []"))).toEqual([
      "worky.toml:2: tenants.a.module: missing required key",
      "worky.toml:2: tenants.a.routes: missing required key",
    ]);
  });

  it("reports a module file that doesn't exist (or is a folder)", async () => {
    await Deno.mkdir(`${dir}/folder`);
    expect(
      await errors(toml(
        "[tenants.a]",
        'module = "missing/mod.ts"',
        'routes = ["a.localhost/*"]',
        "[tenants.b]",
        'module = "folder"',
        'routes = ["b.localhost/*"]',
      )),
    ).toEqual([
      `worky.toml:2: tenants.a.module: module file "missing/mod.ts" does not exist (looked for ${dir}/missing/mod.ts)`,
      `worky.toml:5: tenants.b.module: module file "folder" does not exist (looked for ${dir}/folder)`,
    ]);
  });

  it("reports bad and empty routes", async () => {
    expect(
      await errors(toml(
        "[tenants.shop]",
        'module = "mod.ts"',
        "routes = [",
        '  "shop.localhost/*",',
        '  "shop",',
        '  "shop.localhost:8787/*",',
        "]",
        "[tenants.b]",
        'module = "mod.ts"',
        "routes = []",
      )),
    ).toEqual([
      'worky.toml:5: tenants.shop.routes[1]: "shop" is not a route (expected host/path pattern like "shop.localhost/*")',
      'worky.toml:6: tenants.shop.routes[2]: "shop.localhost:8787/*" is not a route: ports are not allowed (matching ignores the port; write "shop.localhost/*")',
      "worky.toml:10: tenants.b.routes: must list at least one route",
    ]);
  });

  it("reports identical routes in two tenants and in one tenant", async () => {
    expect(
      await errors(toml(
        "[tenants.a]",
        'module = "mod.ts"',
        'routes = ["shop.localhost/*", "*/a/*", "*/a/*"]',
        "[tenants.b]",
        'module = "mod.ts"',
        'routes = ["*/b/*", "SHOP.localhost/*"]',
      )),
    ).toEqual([
      'worky.toml:3: tenants.a.routes[2]: "*/a/*" is the same route as tenants.a.routes[1]: identical routes are ambiguous',
      'worky.toml:6: tenants.b.routes[1]: "SHOP.localhost/*" is the same route as tenants.a.routes[0] ("shop.localhost/*"): identical routes are ambiguous',
    ]);
  });

  it("reports bad tenant names, and still checks their tables", async () => {
    expect(
      await errors(toml(
        "[tenants.Shop]",
        'module = "mod.ts"',
        'routes = ["shop"]',
        '[tenants."9lives"]',
        'module = "mod.ts"',
        'routes = ["nine.localhost/*"]',
        `[tenants.${"a".repeat(64)}]`,
        'module = "mod.ts"',
        'routes = ["long.localhost/*"]',
      )),
    ).toEqual([
      'worky.toml:1: tenants.Shop: "Shop" is not a valid tenant name (lowercase letter first, then a-z 0-9 _ -, at most 63 characters)',
      'worky.toml:3: tenants.Shop.routes[0]: "shop" is not a route (expected host/path pattern like "shop.localhost/*")',
      'worky.toml:4: tenants.9lives: "9lives" is not a valid tenant name (lowercase letter first, then a-z 0-9 _ -, at most 63 characters)',
      `worky.toml:7: tenants.${"a".repeat(64)}: "${
        "a".repeat(64)
      }" is not a valid tenant name (lowercase letter first, then a-z 0-9 _ -, at most 63 characters)`,
    ]);
  });

  it("reports bad binding names and names bound twice", async () => {
    expect(
      await errors(toml(
        ...TENANT_A,
        'kv = ["CART", "my-kv", "CART"]',
        'vars = { CART = "x", "2FA" = true, OK = 1 }',
      )),
    ).toEqual([
      'worky.toml:4: tenants.a.kv[1]: "my-kv" is not a valid binding name (letters, digits and _, not starting with a digit)',
      'worky.toml:4: tenants.a.kv[0]: binding name "CART" is already used by vars.CART',
      'worky.toml:4: tenants.a.kv[2]: binding name "CART" is already used by vars.CART',
      'worky.toml:5: tenants.a.vars.2FA: "2FA" is not a valid binding name (letters, digits and _, not starting with a digit)',
    ]);
  });

  it("reports var values that aren't JSON", async () => {
    expect(
      await errors(
        toml(...TENANT_A, "[tenants.a.vars]", "WHEN = 1979-05-27", "N = nan", "L = [inf]"),
      ),
    ).toEqual([
      "worky.toml:5: tenants.a.vars.WHEN: a date is not a JSON value (write dates as strings)",
      "worky.toml:6: tenants.a.vars.N: NaN is not a JSON number",
      "worky.toml:7: tenants.a.vars.L[0]: Infinity is not a JSON number",
    ]);
  });

  it("reports out-of-range limits and server port", async () => {
    expect(
      await errors(toml(
        "[server]",
        "port = 65536",
        ...TENANT_A,
        "[tenants.a.limits]",
        "timeout_ms = 0",
        "max_workers = 65",
        "max_concurrency_per_worker = 1.5",
      )),
    ).toEqual([
      "worky.toml:2: server.port: must be an integer from 0 to 65535, got 65536",
      "worky.toml:7: tenants.a.limits.timeout_ms: must be an integer from 1 to 600000, got 0",
      "worky.toml:8: tenants.a.limits.max_workers: must be an integer from 1 to 64, got 65",
      "worky.toml:9: tenants.a.limits.max_concurrency_per_worker: must be an integer from 1 to 10000, got 1.5",
    ]);
  });

  it("reports hosts with a scheme in net allowlists", async () => {
    expect(
      await errors(
        toml(...TENANT_A, "[tenants.a.permissions]", 'net = ["https://api.example.com"]'),
      ),
    ).toEqual([
      'worky.toml:5: tenants.a.permissions.net: "https://api.example.com" is not a host (write "host" or "host:port", no scheme or path)',
    ]);
  });

  it("reports sys names a tenant can't hold (process-wide) and unknown ones", async () => {
    const grantable =
      "grantable: hostname, osRelease, osUptime, loadavg, networkInterfaces, systemMemoryInfo, uid, gid, cpus, homedir, getegid, username, statfs, getPriority, userInfo";
    expect(
      await errors(toml(...TENANT_A, "[tenants.a.permissions]", 'sys = ["hostname", "inspector"]')),
    ).toEqual([
      `worky.toml:5: tenants.a.permissions.sys: "inspector" can't be granted to a tenant (it reaches the whole Worky process); ${grantable}`,
    ]);
    expect(
      await errors(toml(...TENANT_A, "[tenants.a.permissions]", 'sys = ["uptime"]')),
    ).toEqual([
      `worky.toml:5: tenants.a.permissions.sys: "uptime" can't be granted to a tenant (not one of Deno's sys names); ${grantable}`,
    ]);
  });

  it("reports env names a tenant can't hold (Worky's own)", async () => {
    expect(
      await errors(
        toml(...TENANT_A, "[tenants.a.permissions]", 'env = ["TZ", "WORKY_SECRET_KEY"]'),
      ),
    ).toEqual([
      `worky.toml:5: tenants.a.permissions.env: "WORKY_SECRET_KEY" is Worky's own (WORKY_* and DENO_AUTH_TOKENS are never given to a tenant); pass a value to the tenant with [tenants.<name>] vars or worky secret put`,
    ]);
  });

  it("reports read and write grants that reach Worky's own files (data folder, database)", async () => {
    const lines = await errors(
      toml(
        '[server]\ndata_dir = "state"\ndb_url = "file:/var/lib/worky/w.db"',
        ...TENANT_A,
        "[tenants.a.permissions]",
        "read = true",
        'write = ["./state/cache"]',
        "[tenants.b]",
        'module = "mod.ts"',
        'routes = ["b.localhost/*"]',
        "[tenants.b.permissions]",
        'read = ["/var/lib"]',
      ),
    );
    const own = `${dir}/state, /var/lib/worky/w.db: the database and the secrets key`;
    expect(lines).toEqual([
      `worky.toml:8: tenants.a.permissions.read: true would give the tenant Worky's own files (${own}); list the folders it needs instead`,
      `worky.toml:9: tenants.a.permissions.write: "${dir}/state/cache" would give the tenant Worky's own files (${own}); list the folders it needs instead`,
      `worky.toml:14: tenants.b.permissions.read: "/var/lib" would give the tenant Worky's own files (${own}); list the folders it needs instead`,
    ]);
  });

  it("reports bad TOML syntax with its line", async () => {
    const lines = await errors(toml(...TENANT_A, "kv = [", '"A" "B"]'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^worky\.toml:5: invalid TOML: .+ \(column \d+\)$/);
    expect(await errors(toml("[server]", "port = = 1"))).toEqual([
      expect.stringMatching(/^worky\.toml:2: invalid TOML: /),
    ]);
  });

  it("reports every problem at once, sorted by line", async () => {
    const lines = await errors(toml(
      "bogus = 1",
      "[tenants.Bad]",
      'module = "nope.ts"',
      'routes = ["bad"]',
      "[tenants.Bad.limits]",
      "max_workers = 0",
      "[tenants.ok]",
      'module = "mod.ts"',
      'routes = ["bad.localhost/*"]',
      'kv = ["X"]',
      "vars = { X = 1 }",
    ));
    expect(lines.map((l) => l.slice(0, l.indexOf(": ", l.indexOf(": ") + 1)))).toEqual([
      "worky.toml:1: bogus",
      "worky.toml:2: tenants.Bad",
      "worky.toml:3: tenants.Bad.module",
      "worky.toml:4: tenants.Bad.routes[0]",
      "worky.toml:6: tenants.Bad.limits.max_workers",
      "worky.toml:10: tenants.ok.kv[0]",
    ]);
  });

  it("reports a config file that can't be read", async () => {
    await expect(loadConfig(`${dir}/missing.toml`)).rejects.toMatchObject({
      code: "ERR_CONFIG_INVALID",
      message: `cannot read config file ${dir}/missing.toml: no such file`,
    });
  });
});

describe("parseConfig", () => {
  it("uses the injected file check and the given path and folder", () => {
    const seen: string[] = [];
    const config = parseConfig(toml(...TENANT_A), {
      path: "/srv/app/worky.toml",
      dir: "/srv/app",
      env: {},
      fileExists: (p) => {
        seen.push(p);
        return true;
      },
    });
    expect(seen).toEqual(["/srv/app/mod.ts"]);
    expect(config.tenants[0].module).toBe("/srv/app/mod.ts");
    expect(config.server.dataDir).toBe("/srv/app/.worky");
  });

  it("names the file by its basename in messages", () => {
    expect(() => parseConfig("x = 1\n", { path: "/srv/app/prod.toml", dir: "/srv/app", env: {} }))
      .toThrow(/^prod\.toml:1: x: unknown key/);
  });
});

describe("parseConfigObject", () => {
  it("validates an object of the TOML shape", () => {
    const config = parseConfigObject({
      server: { port: 0 },
      tenants: { hello: { module: "./mod.ts", routes: ["*/*"], vars: { GREETING: "Hi" } } },
    }, { path: "<config>", dir, env: {} });
    expect(config.server.port).toBe(0);
    expect(config.tenants[0]).toMatchObject({
      name: "hello",
      module: `${dir}/mod.ts`,
      vars: { GREETING: "Hi" },
    });
  });

  it("reports problems without line numbers", () => {
    expect(() =>
      parseConfigObject(
        { tenants: { a: { module: "mod.ts", routes: ["a"] } }, extra: 1 },
        { path: "<config>", dir, env: {} },
      )
    ).toThrow(
      [
        "<config>: extra: unknown key (expected one of: server, registry, tenants)",
        '<config>: tenants.a.routes[0]: "a" is not a route (expected host/path pattern like "a.localhost/*")',
      ].join("\n"),
    );
    expect(() => parseConfigObject(null, { path: "<config>", dir })).toThrow(
      "<config>: expected a config object, got null",
    );
  });
});

describe("tenantSchema", () => {
  it("validates one tenant table on its own", () => {
    const result = tenantSchema.safeParse({ module: "m.ts", routes: ["a/*"], vars: { A: 1 } });
    expect(result.success).toBe(true);
    expect(result.data?.limits).toEqual(DEFAULT_LIMITS);
    expect(tenantSchema.safeParse({ module: "m.ts", routes: ["a/*"], nope: 1 }).success).toBe(
      false,
    );
  });
});
