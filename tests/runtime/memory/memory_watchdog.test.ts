/** The host's memory watchdog, driven tick by tick with a fake RSS and fake workers. */
import { describe, expect, it } from "vitest";
import {
  MemoryWatchdog,
  statmRss,
  type WatchedWorker,
} from "../../../runtime/memory/memory_watchdog.ts";
import { MemoryLogger } from "../../../runtime/logger.ts";

const MiB = 1024 * 1024;

class FakeWorker implements WatchedWorker {
  inFlight = 0;
  messages = 0;
  state: "starting" | "ready" | "dead" = "ready";
  killed: { reason: string; code?: string } | undefined;
  constructor(readonly tenant: string) {}
  kill(reason: string, code?: string) {
    this.state = "dead";
    this.killed = { reason, code };
  }
}

function setup() {
  let rss = 100 * MiB;
  let external = 0;
  let reads = 0;
  let t = 0;
  const dog = new MemoryWatchdog({
    intervalMs: 0, // ticks are driven by the test
    slackMb: 50,
    runawayMb: 100,
    runawayWindowMs: 1000,
    readRss: () => (reads++, rss),
    readHostExternal: () => external,
    now: () => t,
  });
  dog.logger = new MemoryLogger();
  dog.acquire(); // baseline 100 MiB
  const step = (growMb: number, hostBuffersMb = 0) => {
    rss += growMb * MiB;
    external += hostBuffersMb * MiB;
    t += 25;
    return dog.tick();
  };
  return { dog, step, reads: () => reads, setRss: (mb: number) => (rss = mb * MiB) };
}

describe("MemoryWatchdog", () => {
  it("reads no RSS while every worker is idle", () => {
    const { dog, step, reads } = setup();
    dog.watch(new FakeWorker("a"), 64);
    const before = reads();
    for (let i = 0; i < 10; i++) step(100);
    expect(reads()).toBe(before);
  });

  it("stops the silent busy worker the growth is under, once RSS passes the budget", () => {
    const { dog, step } = setup();
    const hog = new FakeWorker("hog"),
      chatty = new FakeWorker("chatty"),
      late = new FakeWorker("late");
    dog.watch(hog, 64);
    dog.watch(chatty, 128);
    dog.watch(late, 128);
    expect(dog.budget).toBe((100 + 64 + 128 + 128 + 50) * MiB);
    hog.inFlight = 1;
    chatty.inFlight = 1;
    step(0); // both start being watched
    let stopped: WatchedWorker | undefined;
    for (let i = 0; i < 20 && !stopped; i++) {
      chatty.messages++; // answering: never a suspect
      if (i === 5) late.inFlight = 1; // silent too, but for less of the growth
      stopped = step(40);
    }
    expect(stopped).toBe(hog);
    expect(hog.killed?.code).toBe("ERR_TENANT_MEMORY");
    expect(hog.killed?.reason).toMatch(
      /^worker ran without yielding while the process grew by \d+ MiB, over its limit of 64 MiB \(limits.memory_mb\)/,
    );
    expect(chatty.killed).toBeUndefined();
    expect(late.killed).toBeUndefined();
    expect(dog.kills).toBe(1);
  });

  it("stops nobody while RSS stays within the budget", () => {
    const { dog, step } = setup();
    const w = new FakeWorker("a");
    dog.watch(w, 128);
    w.inFlight = 1;
    for (let i = 0; i < 7; i++) expect(step(25)).toBeUndefined(); // +175 MiB < 178
    expect(w.killed).toBeUndefined();
  });

  it("stops nobody whose growth stays within its own limit, even over the budget", () => {
    const { dog, step, setRss } = setup();
    const w = new FakeWorker("busy");
    dog.watch(w, 128);
    w.inFlight = 1;
    setRss(400); // the process is over its budget (306 MiB) for reasons of its own
    for (let i = 0; i < 20; i++) expect(step(5)).toBeUndefined(); // +100 MiB < 128
    expect(w.killed).toBeUndefined();
    for (let i = 0; i < 10 && !w.killed; i++) step(5); // past 128 MiB: now it is the loop
    expect(w.killed?.code).toBe("ERR_TENANT_MEMORY");
  });

  it("blames nobody for growth the host isolate's buffers explain (bodies handed over)", () => {
    const { dog, step } = setup();
    const w = new FakeWorker("big");
    dog.watch(w, 128);
    w.inFlight = 1;
    // +400 MiB, 380 of it big bodies this thread holds until its next GC: 20 MiB is the worker's
    for (let i = 0; i < 20; i++) expect(step(20, 19)).toBeUndefined();
    expect(w.killed).toBeUndefined();
    // the same growth outside the host's buffers is the worker's
    for (let i = 0; i < 10 && !w.killed; i++) step(20);
    expect(w.killed?.code).toBe("ERR_TENANT_MEMORY");
  });

  it("reports a runaway when the process keeps growing after the kill", () => {
    const { dog, step } = setup();
    const runaways: string[] = [];
    dog.onRunaway = (tenant) => runaways.push(tenant);
    const w = new FakeWorker("a");
    dog.watch(w, 64);
    w.inFlight = 1;
    while (!w.killed) step(50);
    step(60);
    expect(runaways).toEqual([]);
    step(60); // +120 MiB since the kill
    expect(runaways).toEqual(["a"]);
  });

  it("blames nobody else for a stopped loop's growth, in the runaway window or after it", () => {
    const { dog, step } = setup();
    const hog = new FakeWorker("hog"), starved = new FakeWorker("starved");
    const busy = new FakeWorker("busy");
    dog.watch(hog, 64);
    dog.watch(starved, 64);
    dog.watch(busy, 128);
    hog.inFlight = 1;
    while (!hog.killed) step(50);
    starved.inFlight = 1; // silent from now on, while the killed thread keeps allocating
    for (let i = 0; i < 10; i++) step(5);
    expect(starved.killed).toBeUndefined();
    // after the window, slower growth that Deno can't stop either: not the answering worker's
    starved.inFlight = 0;
    busy.inFlight = 1;
    for (let i = 0; i < 100; i++) {
      busy.messages++;
      step(10);
    }
    expect(busy.killed).toBeUndefined();
  });

  it("reports no runaway when the killed worker's memory goes away", () => {
    const { dog, step, setRss } = setup();
    const runaways: string[] = [];
    dog.onRunaway = (tenant) => runaways.push(tenant);
    const w = new FakeWorker("a");
    dog.watch(w, 64);
    w.inFlight = 1;
    while (!w.killed) step(50);
    setRss(110);
    for (let i = 0; i < 60; i++) step(0);
    setRss(400); // after the window: someone else's growth, not a runaway
    step(0);
    expect(runaways).toEqual([]);
  });

  it("stops the worker whose events keep memory outside its heap, though it answers", () => {
    const { dog, step } = setup();
    const keeper = new FakeWorker("keeper"), good = new FakeWorker("good");
    dog.watch(keeper, 48);
    dog.watch(good, 128);
    let stopped: WatchedWorker | undefined;
    for (let i = 0; i < 40 && !stopped; i++) {
      // keeper: a short event that keeps 32 MiB (a WebAssembly memory) and answers
      keeper.inFlight = 1;
      keeper.messages++;
      good.inFlight = 0;
      stopped = step(32);
      // good: an event that allocates nothing lasting
      keeper.inFlight = 0;
      good.inFlight = 1;
      good.messages++;
      stopped ??= step(0);
    }
    expect(stopped).toBe(keeper);
    expect(keeper.killed?.code).toBe("ERR_TENANT_MEMORY");
    expect(keeper.killed?.reason).toMatch(
      /^the process grew by \d+ MiB during its events \(memory outside the JS heap.*over its limit of 48 MiB \(limits.memory_mb\)/,
    );
    expect(good.killed).toBeUndefined();
  });

  it("forgets the charges once the process is back near its baseline", () => {
    const { dog, step, setRss } = setup();
    const was = new FakeWorker("was"), now = new FakeWorker("now");
    dog.watch(was, 64);
    dog.watch(now, 64);
    was.inFlight = 1;
    step(0);
    for (let i = 0; i < 17; i++) step(10); // 170 MiB charged to "was", within the 278 budget
    was.inFlight = 0;
    now.inFlight = 1;
    step(0);
    setRss(120); // freed (on "now"'s watch): back within the slack of the 100 MiB baseline
    step(0);
    let stopped: WatchedWorker | undefined;
    for (let i = 0; i < 30 && !stopped; i++) {
      now.messages++; // answering: not the silent rule's
      stopped = step(10);
    }
    // over the budget with 160 MiB charged to "now": "was" keeps none of its old 170
    expect(stopped).toBe(now);
    expect(was.killed).toBeUndefined();
  });

  it("reads this process's RSS from /proc/self/statm", () => {
    const rss = statmRss()();
    const actual = Deno.memoryUsage().rss;
    expect(Math.abs(rss - actual)).toBeLessThan(actual / 4);
  });
});
