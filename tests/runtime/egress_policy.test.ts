/** The egress policy and the address classifier, with an injected resolver. */
import { expect, it } from "vitest";
import { EgressPolicy, protectControlPlanePort } from "../../runtime/egress.ts";
import { classifyIp, inRange, parseCidr, parseIp } from "../../runtime/ip_ranges.ts";

it("classifies every spelling of loopback, private and metadata addresses", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "loopback"],
    ["2130706433", "loopback"],
    ["0x7f.1", "loopback"],
    ["0177.0.0.1", "loopback"],
    ["127.1", "loopback"],
    ["::1", "loopback"],
    ["[::ffff:127.0.0.1]", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["169.254.169.254", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["fd00::1", "unique-local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["64:ff9b::a00:1", "private"],
    ["2002:c0a8:101::1", "private"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["172.32.0.1", "public"],
    ["8.8.8.8", "public"],
    ["2606:4700::1111", "public"],
  ];
  for (const [ip, cls] of cases) expect([ip, classifyIp(ip)]).toEqual([ip, cls]);
  for (const bad of ["1.2.3.4.5", "256.1.1.1", "example.com", "1::2::3", "1:2:3:4:5:6:7:8:9"]) {
    expect(parseIp(bad)).toBeUndefined();
  }
  expect(inRange(parseIp("::ffff:10.0.0.5")!, parseCidr("10.0.0.0/8")!)).toBe(true);
  expect(inRange(parseIp("11.0.0.5")!, parseCidr("10.0.0.0/8")!)).toBe(false);
});

const resolve = (table: Record<string, string[]>) => (host: string) =>
  table[host] ? Promise.resolve(table[host]) : Promise.reject(new Error(`ENOTFOUND ${host}`));

it("refuses names resolving to private or own addresses; allows public ones", async () => {
  const p = new EgressPolicy({ net: true, allowPrivate: [] }, {
    resolve: resolve({
      "public.test": ["93.184.216.34"],
      "rebind.test": ["93.184.216.34", "10.0.0.7"],
      "self.test": ["203.0.113.9"],
    }),
    selfAddresses: ["203.0.113.9"],
  });
  await p.check("public.test", 443);
  await expect(p.check("rebind.test", 443)).rejects.toThrow(
    /resolves to 10\.0\.0\.7, which is a private/,
  );
  await expect(p.check("self.test", 80)).rejects.toThrow(/address of the Worky host/);
  await expect(p.check("203.0.113.9", 80)).rejects.toThrow(/address of the Worky host/);
  await expect(p.check("missing.test", 80)).rejects.toThrow(/does not resolve/);
  await expect(p.check("169.254.169.254", 80)).rejects.toMatchObject({
    code: "ERR_PERMISSION_DENIED",
  });
});

it("config that names a host, host:port or range allows exactly that; never the control plane", async () => {
  const p = new EgressPolicy({
    net: ["db.internal:5432", "127.0.0.1:9000"],
    allowPrivate: ["10.1.0.0/16"],
  }, {
    resolve: resolve({ "db.internal": ["10.9.9.9"], "svc.internal": ["10.1.2.3"] }),
    selfAddresses: [],
  });
  await p.check("db.internal", 5432);
  await expect(p.check("db.internal", 22)).rejects.toThrow(/private/);
  await p.check("127.0.0.1", 9000);
  await expect(p.check("127.0.0.1", 9001)).rejects.toThrow(/loopback/);
  await p.check("svc.internal", 80);
  await p.check("10.1.200.1", 80);
  await expect(p.check("10.2.0.1", 80)).rejects.toThrow(/private/);
  const undo = protectControlPlanePort(9000);
  try {
    await expect(p.check("127.0.0.1", 9000)).rejects.toThrow(/Worky control plane/);
  } finally {
    undo();
  }
});
