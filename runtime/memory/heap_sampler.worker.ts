/**
 * Inside a tenant worker: samples this isolate's memory (V8 heap + external
 * buffers, from `node:v8` heap statistics, which are per isolate: measured;
 * 0.3 µs a call where `Deno.memoryUsage()` costs 11 µs because of its RSS read) and
 * reports once when it is over the tenant's soft limit, so the host retires
 * the worker before it can grow into V8's hard limit (which would abort the
 * whole process). Samples on an interval and whenever the bootstrap calls
 * `sample()` (after each event).
 *
 * Limitation: a synchronous allocation loop never yields to the interval; the
 * host's `memory_watchdog.ts` catches that one (docs/architecture.md).
 *
 * Imports nothing but Deno/node APIs.
 */
import { getHeapStatistics } from "node:v8";

/** What the bootstrap gets back. */
export interface HeapSampler {
  /** Samples now (cheap: one heap-statistics call); reports when over the limit. */
  sample(): void;
}

/**
 * Starts sampling. `report(used, limit)` is called at most once.
 *
 * @example
 * ```ts ignore
 * const sampler = startHeapSampler(128, (used, limit) => post([W_MEMORY, used, limit]));
 * sampler.sample();
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
  return { sample };
}
