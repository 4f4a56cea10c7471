/**
 * The cell CPU meter's rules on given thread readings (`control-plane/cells/cell_cpu.ts`): equal
 * shares, a new thread's baseline, one breach, and the verdict on a stopped worker's thread. The
 * meter on a real cell's threads is in tests/runtime/cpu_limit.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  CellCpuMeter,
  readWorkerThreads,
  type ThreadCpu,
} from "../../../control-plane/cells/cell_cpu.ts";
import type { CellIncarnation } from "../../../control-plane/cells/cell_process.ts";

const MS = 1e6;

/**
 * A meter over `threads` (tid → [ns, running]), which the test changes between readings. The
 * tids are made up, so the threads it would renice are recorded in `yielded` instead (the real
 * `lowerPriority` once reniced this machine's pid 1 and 2 from here).
 */
function meterOver(cpuMs: number) {
  const threads = new Map<number, [number, boolean]>();
  const run = { pid: 4242 } as CellIncarnation;
  const breaches: string[] = [];
  const yielded: number[] = [];
  const meter = new CellCpuMeter({
    tenant: "t",
    cpuMs,
    run: () => run,
    onBreach: (_run, why) => breaches.push(why),
    read: () =>
      new Map<number, ThreadCpu>(
        [...threads].map(([tid, [ns, running]]) => [tid, { ns, running }]),
      ),
    lowerPriority: (tid, niceness) => (yielded.push(tid), niceness === 19),
  });
  return { meter, threads, run, breaches, yielded };
}

describe("CellCpuMeter", () => {
  it("shares what the worker threads used among the events in flight; a new thread is a baseline", () => {
    const { meter, threads } = meterOver(1000);
    threads.set(1, [0, true]);
    const a = meter.begin(), b = meter.begin();
    meter.sweep(); // baseline
    threads.set(1, [100 * MS, true]);
    threads.set(2, [500 * MS, true]); // started since: its past is not charged
    meter.sweep();
    expect(a.cpuNs).toBe(50 * MS);
    expect(b.cpuNs).toBe(50 * MS);
    meter.end(b);
    threads.set(2, [530 * MS, true]);
    meter.sweep();
    expect(a.cpuNs).toBe(80 * MS);
    meter.end(a);
  });

  /** One event while thread 1 reaches each of `msSoFar` in turn; what it was marked at each. */
  function oneEvent(cpuMs: number, msSoFar: number[]) {
    const { meter, threads, breaches } = meterOver(cpuMs);
    threads.set(1, [0, true]);
    const ev = meter.begin();
    meter.sweep();
    const marks = msSoFar.map((ms) => {
      threads.set(1, [ms * MS, true]);
      meter.sweep();
      return ev.breached;
    });
    meter.end(ev);
    return { marks, breaches };
  }

  it("marks the first event past cpu_ms breached and stops the cell once", () => {
    const { marks, breaches } = oneEvent(200, [150, 210, 400]);
    expect(marks[0]).toBeUndefined();
    expect(marks[1]).toContain("more than 200 ms of CPU (limits.cpu_ms)");
    expect(breaches).toEqual(["an event used more than 200 ms of CPU (limits.cpu_ms)"]);
  });

  it("makes the busy threads yield after 50 ms used while no event ended, each share small", () => {
    const { meter, threads, yielded } = meterOver(10_000);
    threads.set(1, [0, true]);
    threads.set(2, [0, true]);
    const evs = Array.from({ length: 16 }, () => meter.begin());
    meter.sweep(); // baseline
    threads.set(1, [30 * MS, true]);
    meter.sweep();
    meter.end(evs.pop()!); // an answer: what ran so far was not one long stretch
    threads.set(1, [60 * MS, true]);
    meter.sweep();
    expect(yielded).toEqual([]); // 30 ms since the answer, 4 ms a share at most
    threads.set(1, [85 * MS, true]);
    meter.sweep();
    // 55 ms without an answer: a loop, though each of the 15 events' shares is under 6 ms
    expect(evs.every((ev) => ev.cpuNs < 10 * MS)).toBe(true);
    expect(yielded).toEqual([1]); // the busy thread, not the idle one
    for (const ev of evs) meter.end(ev);
  });

  it("charges nothing against a limit of 0", () => {
    const { marks, breaches } = oneEvent(0, [10_000]);
    expect(marks).toEqual([undefined]);
    expect(breaches).toEqual([]);
  });

  it("judges a stopped worker's thread spinning when it keeps half a core, or runs starved", async () => {
    const { meter, threads, run } = meterOver(0);
    threads.set(1, [0, true]);
    const ev = meter.begin();
    meter.sweep(); // the meter saw thread 1 before the stop
    meter.end(ev);
    // spinning at full speed: the reading after the verdict window has 150 ms more
    const verdict = meter.spinning(run);
    threads.set(1, [150 * MS, true]);
    expect(await verdict).toMatch(/a worker thread kept \d+% of a core busy 1\d\d ms after/);
    // starved (runnable at both readings, a little CPU): judged again 300 ms later, spinning if
    // it still runs then; a slow finite piece of work that ended meanwhile is not
    const starved = meter.spinning(run);
    threads.set(1, [151 * MS, true]);
    await new Promise((r) => setTimeout(r, 200)); // past the first reading
    threads.set(1, [152 * MS, true]);
    expect(await starved).toMatch(/kept \d+% of a core busy 4\d\d ms after/);
    const finished = meter.spinning(run);
    threads.set(1, [153 * MS, true]);
    await new Promise((r) => setTimeout(r, 200));
    threads.set(1, [160 * MS, false]);
    expect(await finished).toBeUndefined();
    // stopped: gone, or asleep at the second reading
    const stopped = meter.spinning(run);
    threads.set(1, [151 * MS, false]);
    expect(await stopped).toBeUndefined();
  });

  it("does not judge a thread it never saw before the stop (a replacement worker starting)", async () => {
    const { meter, threads, run } = meterOver(0);
    threads.set(1, [0, false]);
    const ev = meter.begin();
    meter.sweep();
    meter.end(ev);
    threads.set(2, [0, true]); // started after the last reading
    const verdict = meter.spinning(run);
    threads.set(2, [150 * MS, true]);
    expect(await verdict).toBeUndefined();
  });

  it.skipIf(Deno.build.os !== "linux")("reads this process's worker threads from /proc", () => {
    const w = new Worker(
      `data:text/javascript,self.onmessage = () => { const end = Date.now() + 30; while (Date.now() < end) {} postMessage(1); }`,
      { type: "module" },
    );
    return new Promise<void>((resolve, reject) => {
      w.onmessage = () => {
        try {
          const names = new Map<number, boolean>();
          const threads = readWorkerThreads(Deno.pid, names, true)!;
          expect(threads.size).toBeGreaterThan(0); // vitest's own workers may be there too
          expect([...threads.values()].some((t) => t.ns >= 30 * MS)).toBe(true);
          expect(names.get(Deno.pid)).toBe(false); // the main thread is no worker
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          w.terminate();
        }
      };
      w.postMessage(0);
    });
  });
});
