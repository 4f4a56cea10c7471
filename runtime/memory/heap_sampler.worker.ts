/**
 * Inside a tenant worker: samples this isolate's memory (V8 heap + external
 * buffers, from `node:v8` heap statistics, which are per isolate: measured;
 * 0.3 µs a call where `Deno.memoryUsage()` costs 11 µs because of its RSS read) and
 * reports once when it is over the tenant's soft limit, so the host retires
 * the worker before it can grow into V8's hard limit (which would abort the
 * whole process). Samples on an interval and on every 8th call of
 * `afterEvent()` (the bootstrap calls it after each event; one heap-statistics call per event was
 * ~5% of a hello request's worker time, and the interval still runs between busy events).
 *
 * Limitation: a synchronous allocation loop never yields to the interval; the
 * host's `memory_watchdog.ts` catches that one (docs/architecture.md).
 *
 * Imports nothing but Deno/node APIs.
 */
import { getHeapStatistics } from "node:v8";

/** What the bootstrap gets back. */
export interface HeapSampler {
  /** Called after each event: samples on every 8th call; reports when over the limit. */
  afterEvent(): void;
}

/**
 * Starts sampling. `report(used, limit)` is called at most once.
 *
 * @example
 * ```ts ignore
 * const sampler = startHeapSampler(128, (used, limit) => post([W_MEMORY, used, limit]));
 * sampler.afterEvent();
 * ```
 */
export function startHeapSampler(
  limitMb: number,
  report: (usedBytes: number, limitBytes: number) => void,
  intervalMs = 100,
): HeapSampler {
  const heapStatistics = getHeapStatistics;
  const limit = limitMb * 1024 * 1024;
  let reported = false;
  const sample = () => {
    if (reported || limit <= 0) return;
    const m = heapStatistics();
    const used = m.used_heap_size + m.external_memory;
    if (used > limit) {
      reported = true;
      clearInterval(timer);
      report(used, limit);
    }
  };
  const timer = limit > 0 ? setInterval(sample, intervalMs) : undefined;
  let events = 0;
  return {
    afterEvent() {
      if ((++events & 7) === 0) sample();
    },
  };
}
