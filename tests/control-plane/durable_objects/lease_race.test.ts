/**
 * A lease released while another owner tries to take it: the taker's insert fails (still held),
 * the holder's delete lands, and the taker's look at who holds it finds nobody. That lease is
 * free, so the taker gets it. Before, it failed with `ERR_CONFLICT` naming an "unknown" holder,
 * which no caller waits for: a tenant back in-process from a draining cell got a 409 (seen once
 * in CI). One libSQL connection, so the statements run in the order they were sent.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDatabase } from "../../../control-plane/storage/database.ts";
import { TimerService } from "../../../control-plane/scheduler/timer_service.ts";
import { DurableObjectAlarms } from "../../../control-plane/durable_objects/alarms.ts";
import { LibsqlObjectBackend } from "../../../control-plane/durable_objects/libsql_backend.ts";

let dir: string;
let database: Awaited<ReturnType<typeof openDatabase>>;
let timers: TimerService;
beforeAll(async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-lease-race-" });
  database = await openDatabase(`file:${dir}/worky.db`);
  timers = new TimerService({ client: database.client });
});
afterAll(async () => {
  database.close();
  await Deno.remove(dir, { recursive: true });
});

const backend = (owner: string) =>
  new LibsqlObjectBackend({
    db: database.db,
    dir: `${dir}/do`,
    leaseMs: 30_000,
    alarms: new DurableObjectAlarms({ timers }),
    owner,
  });

it("takes a lease released between its insert and its look at the holder", async () => {
  const cell = backend("cell:moving:1");
  const here = backend("control-plane");
  const address = { tenant: "moving", className: "Counter", id: "a".repeat(64) };
  for (let i = 0; i < 20; i++) {
    await cell.acquireLease(address, Date.now());
    // sent in this order: here's insert (fails: held), the cell's delete, here's select
    const [taken] = await Promise.allSettled([
      here.acquireLease(address, Date.now()),
      cell.releaseLease(address),
    ]);
    expect(taken).toEqual({ status: "fulfilled", value: undefined });
    await here.releaseLease(address);
  }
});

it("still refuses a lease another owner holds, naming it", async () => {
  const cell = backend("cell:moving:2");
  const here = backend("control-plane");
  const address = { tenant: "moving", className: "Counter", id: "b".repeat(64) };
  await cell.acquireLease(address, Date.now());
  const err = await here.acquireLease(address, Date.now()).catch((e) => e);
  expect(err).toMatchObject({ code: "ERR_CONFLICT", holder: "cell:moving:2" });
  expect(String(err.message)).toContain("cell:moving:2");
  await cell.releaseLease(address);
  await here.acquireLease(address, Date.now()); // free again
});
