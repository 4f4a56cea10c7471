/** The `examples/chat_room` tenant from the root worky.toml, served for real, used by real clients. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../../control-plane/config/load_config.ts";
import { startServer, type WorkyServer } from "../../../control-plane/server.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";
import { ManualClock } from "../../../runtime/clock.ts";
import { REPO, until } from "../../_helpers/fixture.ts";
import { connect } from "./_client.ts";

let server: WorkyServer;
let dataDir: string;
const clock = new ManualClock(Date.now());
beforeAll(async () => {
  dataDir = await Deno.makeTempDir({ prefix: "worky-chat-example-" });
  const config = await loadConfig(`${REPO}worky.toml`, { env: {} });
  config.server.dataDir = dataDir;
  config.server.dbUrl = `file:${dataDir}/worky.db`;
  config.tenants = config.tenants.filter((t) => t.name === "chat");
  server = await startServer({
    config,
    port: 0,
    hostname: "127.0.0.1",
    logger: new MemoryLogger(),
    clock,
    durableObjects: { tickMs: 0 },
  });
});
afterAll(async () => {
  await server?.close();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
});

interface Chat {
  type: string;
  name: string;
  text?: string;
  seq?: number;
  count?: number;
  messages?: { name: string; text: string }[];
}

it("serves the page at /chat/", async () => {
  const res = await fetch(`${server.url}/chat/`);
  expect(res.headers.get("content-type")).toContain("text/html");
  expect(await res.text()).toContain("new WebSocket(");
});

it("two clients in one room exchange messages through the room's Durable Object", async () => {
  const ada = connect(`${server.url}/chat/lobby?name=ada`);
  await ada.opened;
  expect(await ada.nextJson<Chat>()).toEqual({ type: "history", messages: [] });
  expect(await ada.nextJson<Chat>()).toEqual({ type: "join", name: "ada", count: 1 });
  const bob = connect(`${server.url}/chat/lobby?name=bob`);
  await bob.opened;
  expect((await bob.nextJson<Chat>()).type).toBe("history");
  expect(await bob.nextJson<Chat>()).toEqual({ type: "join", name: "bob", count: 2 });
  expect(await ada.nextJson<Chat>()).toEqual({ type: "join", name: "bob", count: 2 });
  // someone in another room hears nothing of the lobby
  const eve = connect(`${server.url}/chat/other?name=eve`);
  await eve.opened;

  ada.send("hi bob");
  const expected = { type: "message", name: "ada", text: "hi bob", seq: 1 };
  expect(await bob.nextJson<Chat>()).toEqual(expected);
  expect(await ada.nextJson<Chat>()).toEqual(expected);
  bob.send("hello ada");
  expect(await ada.nextOfType<Chat>("message")).toMatchObject({ name: "bob", seq: 2 });
  expect(await bob.nextOfType<Chat>("message")).toMatchObject({ text: "hello ada", seq: 2 });

  // concurrent sends get distinct sequence numbers (the input gate keeps read-modify-write exact)
  for (let i = 0; i < 10; i++) (i % 2 ? ada : bob).send(`m${i}`);
  const seqs: number[] = [];
  for (let i = 0; i < 10; i++) seqs.push((await ada.nextOfType<Chat>("message")).seq!);
  expect(seqs.sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

  // an open room is never evicted as idle, however long it is quiet
  clock.advance(10 * 60_000);
  await server.durableObjects.directory.evictIdle();
  expect(server.durableObjects.directory.live).toBe(2);

  // a leaving client: the others hear it, the room goes on
  bob.close(1000, "bye");
  expect((await bob.closed).code).toBe(1000);
  expect(await ada.nextOfType<Chat>("leave")).toEqual({ type: "leave", name: "bob", count: 1 });
  ada.send("alone now");
  expect(await ada.nextOfType<Chat>("message")).toMatchObject({ text: "alone now", seq: 13 });

  // a late joiner gets the history
  const cy = connect(`${server.url}/chat/lobby?name=cy`);
  await cy.opened;
  const history = await cy.nextJson<Chat>();
  expect(history.type).toBe("history");
  expect(history.messages!.at(-1)).toMatchObject({ name: "ada", text: "alone now" });

  eve.send("only me");
  expect(await eve.nextOfType<Chat>("message")).toMatchObject({ name: "eve", seq: 1 });

  for (const c of [ada, cy, eve]) c.close();
  await Promise.all([ada.closed, cy.closed, eve.closed]);
  // closed rooms are evictable again
  clock.advance(10 * 60_000);
  const directory = server.durableObjects.directory;
  let evicted = 0;
  // the closes travel to the worker and back; poll until both rooms went
  await until(async () => {
    evicted += await directory.evictIdle();
    return directory.live === 0;
  });
  expect(evicted).toBe(2);
});
