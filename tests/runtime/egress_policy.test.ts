/** The egress policy and the address classifier, with an injected resolver. */
import { expect, it } from "vitest";
import {
  EgressPolicy,
  protectControlPlanePort,
  protectEgressProxyPort,
} from "../../runtime/egress.ts";
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

it("answers the checked addresses: what a connection may dial, never a second resolution", async () => {
  let calls = 0;
  const p = new EgressPolicy({
    net: ["named.test", "localhost:8080"],
    allowPrivate: ["10.1.0.0/16"],
  }, {
    resolve: (host) => {
      calls++;
      return host === "gone.test"
        ? Promise.resolve([])
        : Promise.resolve(host === "named.test" ? ["10.9.9.9", "::1"] : ["10.1.2.3", "10.1.2.4"]);
    },
    selfAddresses: [],
  });
  expect(await p.check("svc.test", 80)).toEqual(["10.1.2.3", "10.1.2.4"]);
  expect(await p.check("0x0a010203", 80)).toEqual(["10.1.2.3"]); // the canonical spelling
  expect(await p.check("[::ffff:10.1.2.3]", 80)).toEqual(["::ffff:a01:203"]);
  // a host the config names is resolved too (the proxy dials an address), any address allowed
  expect(await p.check("named.test", 443)).toEqual(["10.9.9.9", "::1"]);
  expect(await p.check("localhost", 8080)).toEqual(["127.0.0.1", "::1"]);
  await expect(p.check("localhost", 8081)).rejects.toThrow(/localhost is loopback/);
  await expect(p.check("gone.test", 80)).rejects.toThrow(/resolves to no address/);
  expect(calls).toBe(3); // IP literals and localhost names are not looked up
});

it("Worky's own ports are refused on local addresses even for a named host", async () => {
  const p = new EgressPolicy({ net: ["named.test"], allowPrivate: ["127.0.0.1"] }, {
    resolve: () => Promise.resolve(["127.0.0.1"]),
    selfAddresses: [],
  });
  const undoProxy = protectEgressProxyPort(9100);
  const undoPlane = protectControlPlanePort(9101);
  try {
    await expect(p.check("127.0.0.1", 9100)).rejects.toThrow(/is the Worky egress proxy/);
    await expect(p.check("named.test", 9100)).rejects.toThrow(/Worky egress proxy/);
    await expect(p.check("named.test", 9101)).rejects.toThrow(/Worky control plane/);
    expect(await p.check("named.test", 9102)).toEqual(["127.0.0.1"]);
  } finally {
    undoProxy();
    undoPlane();
  }
  expect(await p.check("127.0.0.1", 9100)).toEqual(["127.0.0.1"]);
});
