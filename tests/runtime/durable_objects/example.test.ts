/** The `examples/do_counter` tenant from the root worky.toml, served for real. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer, type WorkyServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";
import { REPO } from "../../_helpers/fixture.ts";

let server: WorkyServer;
let dataDir: string;
beforeAll(async () => {
  dataDir = await Deno.makeTempDir({ prefix: "worky-do-example-" });
  const config = await loadConfig(`${REPO}worky.toml`, { env: {} });
  config.server.dataDir = dataDir;
  config.server.dbUrl = `file:${dataDir}/worky.db`;
  config.tenants = config.tenants.filter((t) => t.name === "do-counter");
  server = await startServer({
    config,
    port: 0,
    hostname: "127.0.0.1",
    logger: new MemoryLogger(),
    durableObjects: { tickMs: 0 },
  });
});
afterAll(async () => {
  await server?.close();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
});

it("counts per name, exactly", async () => {
  const post = () =>
    fetch(`${server.url}/do-counter/visits`, { method: "POST" }).then((r) => r.json());
  const results = await Promise.all(Array.from({ length: 50 }, post));
  expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual(
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  expect(await (await fetch(`${server.url}/do-counter/visits`)).json()).toEqual({
    name: "visits",
    count: 50,
  });
  expect(await (await fetch(`${server.url}/do-counter/other`)).json()).toEqual({
    name: "other",
    count: 0,
  });
});
