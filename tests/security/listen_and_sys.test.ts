/**
 * A tenant opens listening sockets (Deno.listen, Deno.serve, node:net
 * servers, UDP), resolves names, reads system information, opens Deno KV.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const ATTACKS: Record<string, [string, RegExp]> = {
  listen: [`Deno.listen({ port: 0 });`, /not available to Worky tenants/],
  serve: [`Deno.serve({ port: 0 }, () => new Response("x"));`, /not available to Worky tenants/],
  "node-server": [
    `(await import("node:net")).createServer().listen(0);`,
    /not available to Worky tenants/,
  ],
  "node-http-server": [
    `(await import("node:http")).createServer().listen(0);`,
    /not available to Worky tenants/,
  ],
  udp: [
    `(await import("node:dgram")).createSocket("udp4").send("x", 53, "127.0.0.1");`,
    /not available to Worky tenants/,
  ],
  resolveDns: [`return await Deno.resolveDns("localhost", "A");`, /Requires net access/],
  osUptime: [`return Deno.osUptime();`, /Requires sys access/],
  hostname: [`return Deno.hostname();`, /Requires sys access/],
  networkInterfaces: [`return Deno.networkInterfaces();`, /Requires sys access/],
  systemMemoryInfo: [`return Deno.systemMemoryInfo();`, /Requires sys access/],
  openKv: [`return await Deno.openKv();`, /not a function|Requires/],
};

const f = evilTenant(
  () => {
    const cases = Object.entries(ATTACKS).map(([k, [code]]) =>
      `if (how === ${JSON.stringify(k)}) { ${code} return "done"; }`
    );
    return `const how = new URL(request.url).searchParams.get("how");\n${cases.join("\n")}`;
  },
  "",
  { beforeAll, afterAll },
);

for (const [how, [, expected]] of Object.entries(ATTACKS)) {
  attempt(how, async () => {
    const { body } = await ask(f(), "evil", `/?how=${how}`);
    expect(body.ok, JSON.stringify(body)).toBe(false);
    expect(String(body.message)).toMatch(expected);
  });
}
