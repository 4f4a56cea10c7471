/**
 * Pure IP address classification for egress control, shared by the host and
 * tenant workers (imports nothing, touches no Deno API).
 *
 * Addresses are parsed the way resolvers and URL parsers do, so the odd forms
 * that reach 127.0.0.1 (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`,
 * `::ffff:127.0.0.1`, `[::1]`) classify as what they reach.
 *
 * @module
 */

/** What an address is, for egress decisions. Everything but `"public"` is refused by default. */
export type IpClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "unspecified"
  | "unique-local"
  | "multicast"
  | "reserved";

/** An address as bytes: 4 (IPv4) or 16 (IPv6). */
export type IpBytes = Uint8Array;

/**
 * Parses an IPv4 address in any form `inet_aton` / the WHATWG URL parser accept:
 * dotted with 1–4 parts, each decimal, octal (`0` prefix) or hex (`0x`).
 * Returns undefined for anything else.
 */
function parseIpv4(text: string): IpBytes | undefined {
  if (text === "" || text.length > 64) return undefined;
  const parts = text.endsWith(".") ? text.slice(0, -1).split(".") : text.split(".");
  if (parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) n = Number(p);
    else return undefined;
    if (!Number.isFinite(n)) return undefined;
    nums.push(n);
  }
  const last = nums.pop()!;
  for (const n of nums) if (n > 255) return undefined;
  if (last >= 256 ** (4 - nums.length)) return undefined;
  const out = new Uint8Array(4);
  nums.forEach((n, i) => (out[i] = n));
  for (let i = 3, v = last; i >= nums.length; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/** Parses an IPv6 address (optionally in brackets, optionally with a `%zone`). */
function parseIpv6(text: string): IpBytes | undefined {
  let s = text;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":") || s.length > 64) return undefined;
  const lastColon = s.lastIndexOf(":");
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    // a trailing dotted IPv4 (`::ffff:127.0.0.1`) becomes two hex groups
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(maybeV4)) return undefined;
    const v4 = maybeV4.split(".").map(Number);
    if (v4.some((n) => n > 255)) return undefined;
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hex(v4[0], v4[1])}:${hex(v4[2], v4[3])}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const group = (h: string) => (h === "" ? [] : h.split(":"));
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  const groups: number[] = [];
  for (const g of [...head, ...rest]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
  }
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  for (const g of head) groups.push(parseInt(g, 16));
  if (halves.length === 2) { for (let i = total; i < 8; i++) groups.push(0); }
  for (const g of rest) groups.push(parseInt(g, 16));
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Parses an IPv4 (any form) or IPv6 literal; undefined for a host name. */
export function parseIp(text: string): IpBytes | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/** Canonical text of an address (`127.0.0.1`, `::1`-style lowercase hex groups). */
export function formatIp(ip: IpBytes): string {
  if (ip.length === 4) return ip.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

const V4: [number[], number, IpClass][] = [
  [[0, 0, 0, 0], 8, "unspecified"], // "this network"; 0.0.0.0 reaches the local host
  [[10, 0, 0, 0], 8, "private"],
  [[100, 64, 0, 0], 10, "private"], // carrier-grade NAT
  [[127, 0, 0, 0], 8, "loopback"],
  [[169, 254, 0, 0], 16, "link-local"], // includes 169.254.169.254 (cloud metadata)
  [[172, 16, 0, 0], 12, "private"],
  [[192, 0, 0, 0], 24, "reserved"],
  [[192, 168, 0, 0], 16, "private"],
  [[198, 18, 0, 0], 15, "reserved"], // benchmarking
  [[224, 0, 0, 0], 4, "multicast"],
  [[240, 0, 0, 0], 4, "reserved"], // includes 255.255.255.255
];

function inPrefix(ip: IpBytes, base: ArrayLike<number>, bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((ip[i / 8] & mask) !== (base[i / 8] & mask)) return false;
  }
  return true;
}

/**
 * Classifies an address. IPv6 forms that embed an IPv4 address (mapped
 * `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) classify as the
 * embedded address.
 *
 * @example
 * ```ts
 * import { classifyIp } from "./ip_ranges.ts";
 * console.log(classifyIp("2130706433"), classifyIp("::1"), classifyIp("93.184.216.34"));
 * // "loopback" "loopback" "public"
 * ```
 */
export function classifyIp(address: string | IpBytes): IpClass {
  const ip = typeof address === "string" ? parseIp(address) : address;
  if (!ip) throw new TypeError(`${JSON.stringify(address)} is not an IP address`);
  if (ip.length === 4) {
    for (const [base, bits, cls] of V4) if (inPrefix(ip, base, bits)) return cls;
    return "public";
  }
  const zeros = (from: number, to: number) => ip.subarray(from, to).every((b) => b === 0);
  if (zeros(0, 15)) return ip[15] === 1 ? "loopback" : ip[15] === 0 ? "unspecified" : "reserved";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
  if (zeros(0, 10) && ((ip[10] === 0xff && ip[11] === 0xff) || (ip[10] === 0 && ip[11] === 0))) {
    return classifyIp(ip.slice(12));
  }
  if (inPrefix(ip, [0x00, 0x64, 0xff, 0x9b], 32) && zeros(4, 12)) return classifyIp(ip.slice(12));
  if (inPrefix(ip, [0x20, 0x02], 16)) return classifyIp(ip.slice(2, 6));
  if (inPrefix(ip, [0xfe, 0x80], 10)) return "link-local";
  if (inPrefix(ip, [0xfc], 7)) return "unique-local";
  if (inPrefix(ip, [0xfe, 0xc0], 10)) return "private"; // deprecated site-local
  if (inPrefix(ip, [0xff], 8)) return "multicast";
  if (inPrefix(ip, [0x01, 0x00], 16) && zeros(2, 8)) return "reserved"; // discard-only
  if (inPrefix(ip, [0x20, 0x01, 0x0d, 0xb8], 32)) return "reserved"; // documentation
  return "public";
}

/** A parsed CIDR range (`10.0.0.0/8`, `fd00::/8`, or one address). */
export interface IpRange {
  base: IpBytes;
  bits: number;
}

/** Parses `addr` or `addr/bits`; undefined when it is not one. */
export function parseCidr(text: string): IpRange | undefined {
  const slash = text.indexOf("/");
  const base = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!base) return undefined;
  const max = base.length * 8;
  if (slash < 0) return { base, bits: max };
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= max ? { base, bits } : undefined;
}

/** True when `ip` lies in `range` (IPv4-mapped IPv6 matches IPv4 ranges). */
export function inRange(ip: IpBytes, range: IpRange): boolean {
  let addr = ip;
  if (addr.length === 16 && range.base.length === 4) {
    const mapped = addr.subarray(0, 10).every((b) => b === 0) && addr[10] === 0xff &&
      addr[11] === 0xff;
    if (!mapped) return false;
    addr = addr.slice(12);
  }
  if (addr.length !== range.base.length) return false;
  return inPrefix(addr, range.base, range.bits);
}
