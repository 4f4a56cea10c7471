import { expect, it } from "vitest";
import { ConcurrencyGate } from "../../../control-plane/limits/concurrency_gate.ts";

it("admits up to max, then waiters get freed slots in order", async () => {
  const gate = new ConcurrencyGate(2, 60_000);
  expect([gate.tryEnter(), gate.tryEnter(), gate.tryEnter()]).toEqual([true, true, false]);
  const order: number[] = [];
  const w1 = gate.wait().then((ok) => (order.push(1), ok));
  const w2 = gate.wait().then((ok) => (order.push(2), ok));
  expect(gate.waiting).toBe(2);
  gate.leave();
  expect(await w1).toBe(true);
  gate.leave();
  expect(await w2).toBe(true);
  expect(order).toEqual([1, 2]);
  expect(gate.active).toBe(2); // slots passed on, not freed
  gate.leave();
  gate.leave();
  expect(gate.active).toBe(0);
});

it("refuses at once with no queue time, and when the queue is full", async () => {
  const gate = new ConcurrencyGate(1, 0);
  expect(gate.tryEnter()).toBe(true);
  expect(await gate.wait()).toBe(false);
  const queued = new ConcurrencyGate(1, 60_000);
  queued.tryEnter();
  const w = queued.wait();
  expect(await queued.wait()).toBe(false); // at most `max` waiters
  queued.leave();
  expect(await w).toBe(true);
});

it("a waiter gives up after queueMs", async () => {
  const gate = new ConcurrencyGate(1, 20);
  gate.tryEnter();
  expect(await gate.wait()).toBe(false);
  expect(gate.waiting).toBe(0);
});
