/**
 * Input generators for fuzzing the parsers that face the outside: worky.toml
 * (`parseConfig`), route patterns, and HTTP requests at the ingress. Seeded
 * (mulberry32), so a failing input is reproducible from its seed.
 */

/** A small seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const TOKENS = [
  "[",
  "]",
  "[[",
  "]]",
  "=",
  '"',
  "'",
  '"""',
  "\n",
  "#",
  ".",
  ",",
  "{",
  "}",
  "true",
  "false",
  "-1",
  "0",
  "1e999",
  "nan",
  "inf",
  "1979-05-27",
  "\\u0000",
  "\\",
  "tenants",
  "server",
  "limits",
  "permissions",
  "routes",
  "module",
  "kv",
  "vars",
  "egress",
  "allow_private",
  "memory_mb",
  "*",
  "/",
  "*/*",
  "a.localhost/*",
  "net",
  "read",
  "__proto__",
  "constructor",
  "prototype",
  "\u{1F600}",
  "\u0000",
  "\r",
  "\t",
  " ",
  "x".repeat(300),
];

/** Seeds: valid configs the mutators start from. */
export const CONFIG_SEEDS = [
  `[server]\nport = 8787\n[tenants.a]\nmodule = "a.ts"\nroutes = ["a.localhost/*"]\n`,
  `[tenants.shop]\nmodule = "s.ts"\nroutes = ["*/shop/*", "shop.example.com/*"]\nkv = ["CART"]\n` +
  `vars = { A = 1, B = "x" }\n[tenants.shop.permissions]\nnet = ["api.example.com:443"]\n` +
  `[tenants.shop.limits]\ntimeout_ms = 1000\nmemory_mb = 64\n[tenants.shop.egress]\n` +
  `allow_private = ["10.0.0.0/8"]\n`,
  `[tenants.x]\nmodule = "x.ts"\nroutes = ["*/*"]\n[tenants.x.limits]\nrequests_per_second = 5\n`,
];

/** A mutated config text. */
export function mutateConfig(r: () => number): string {
  let s = pick(r, CONFIG_SEEDS);
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (s.length + 1));
    switch (Math.floor(r() * 5)) {
      case 0: // insert a token
        s = s.slice(0, at) + pick(r, TOKENS) + s.slice(at);
        break;
      case 1: // delete a span
        s = s.slice(0, at) + s.slice(at + Math.floor(r() * 20));
        break;
      case 2: // flip a character
        s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x2fff)) + s.slice(at + 1);
        break;
      case 3: // duplicate a line
        {
          const lines = s.split("\n");
          const l = Math.floor(r() * lines.length);
          lines.splice(l, 0, lines[l]);
          s = lines.join("\n");
        }
        break;
      default: // truncate
        s = s.slice(0, at);
    }
  }
  return s;
}

const ROUTE_PARTS = [
  "*",
  ".",
  "/",
  "a",
  "localhost",
  ":",
  "8787",
  "?",
  "#",
  "%",
  "..",
  "//",
  " ",
  "http://",
  "[::1]",
  "é",
  "\u0000",
  "*.",
  "-",
  "_",
  "A",
];

/** A random route pattern. */
export function randomRoute(r: () => number): string {
  let s = "";
  const n = Math.floor(r() * 12);
  for (let i = 0; i < n; i++) s += pick(r, ROUTE_PARTS);
  return s;
}

const METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "HEAD",
  "OPTIONS",
  "CONNECT",
  "TRACE",
  "GE T",
  "",
  "get",
  "X".repeat(100),
  "ÄÖ",
  "G\u0000T",
  "M-SEARCH",
  "PROPFIND",
];
const HEADER_NAMES = [
  "host",
  "content-length",
  "transfer-encoding",
  "x-a",
  "",
  " x",
  "x y",
  "é",
  "cookie",
  "content-type",
  ":authority",
  "x\u0000",
  "expect",
  "connection",
  "upgrade",
];
const HEADER_VALUES = [
  "",
  "1",
  "-1",
  "99999999999999999999",
  "chunked",
  "gzip, chunked",
  "a\u0001b",
  "x".repeat(9000),
  "\u00ff",
  "close",
  "100-continue",
  "websocket",
  " padded ",
];

/** A raw HTTP/1.1 request, often malformed. */
export function randomRawRequest(r: () => number, host: string): string {
  const method = pick(r, METHODS);
  let path = "/";
  const shape = Math.floor(r() * 6);
  if (shape === 0) path = "/" + "a".repeat(Math.floor(r() * 20000));
  else if (shape === 1) path = "*";
  else if (shape === 2) path = "http://evil.example/x";
  else if (shape === 3) path = "/%zz/%00/../" + randomRoute(r);
  else if (shape === 4) path = "";
  else path = "/" + randomRoute(r);
  const version = pick(r, ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "http/1.1"]);
  let req = `${method} ${path} ${version}\r\n`;
  if (r() < 0.9) req += `host: ${r() < 0.8 ? host : pick(r, HEADER_VALUES)}\r\n`;
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) req += `${pick(r, HEADER_NAMES)}: ${pick(r, HEADER_VALUES)}\r\n`;
  req += "connection: close\r\n\r\n";
  if (r() < 0.3) req += "x".repeat(Math.floor(r() * 3000));
  return req;
}

/** A `Request` for the in-process handler, with garbage method, headers and URL. */
export function randomRequest(r: () => number, base: string): Request | undefined {
  try {
    const url = `${base}/${randomRoute(r)}${
      r() < 0.2 ? "?" + "q".repeat(Math.floor(r() * 70000)) : ""
    }`;
    const headers = new Headers();
    const n = Math.floor(r() * 5);
    for (let i = 0; i < n; i++) {
      try {
        headers.append(pick(r, HEADER_NAMES), pick(r, HEADER_VALUES));
      } catch { /* invalid header: the client side refuses it anyway */ }
    }
    const method = pick(r, ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]);
    const body = method === "GET" || r() < 0.5 ? undefined : "b".repeat(Math.floor(r() * 5000));
    return new Request(url, { method, headers, body });
  } catch {
    return undefined; // not a request a client could send
  }
}
