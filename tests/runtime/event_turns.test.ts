/** `EventTurns` (runtime/event_turns.ts): callers resume one per macrotask, in order. */
import { describe, expect, it } from "vitest";
import { EventTurns } from "../../runtime/event_turns.ts";

const microtasks = async (n: number) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

describe("EventTurns", () => {
  it("resumes the callers waiting for one event in turns of their own, in order", async () => {
    const turns = new EventTurns();
    let release!: () => void;
    const event = new Promise<void>((r) => (release = r));
    const resumed: number[] = [];
    const all = [0, 1, 2, 3].map((i) => turns.next(event).then(() => resumed.push(i)));
    await new Promise((r) => setTimeout(r, 5));
    expect(resumed).toEqual([]); // the event has not happened
    release();
    await turns.next(Promise.resolve()).then(() => {}); // a later caller: after all of them
    await Promise.all(all);
    expect(resumed).toEqual([0, 1, 2, 3]);
  });

  it("never resumes two callers in the same turn", async () => {
    const turns = new EventTurns();
    const resumed: number[] = [];
    const first = turns.next().then(() => resumed.push(1));
    const second = turns.next().then(() => resumed.push(2));
    await first;
    await microtasks(20); // everything that runs in this turn has run
    expect(resumed).toEqual([1]);
    await second;
    expect(resumed).toEqual([1, 2]);
  });

  it("a rejected event releases its callers too", async () => {
    const turns = new EventTurns();
    await expect(turns.next(Promise.reject(new Error("move failed")))).resolves.toBeUndefined();
  });
});
