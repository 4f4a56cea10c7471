/**
 * Per-tenant cap on requests in flight. A request over the cap waits up to
 * `queueMs` for a slot (first come, first served; at most `max` waiters),
 * then is refused.
 */

/**
 * @example
 * ```ts
 * import { ConcurrencyGate } from "./concurrency_gate.ts";
 * const gate = new ConcurrencyGate(1, 0);
 * console.log(gate.tryEnter(), gate.tryEnter()); // true false
 * gate.leave();
 * ```
 */
export class ConcurrencyGate {
  #active = 0;
  readonly #waiters: { admit(): void; timer: ReturnType<typeof setTimeout> }[] = [];

  constructor(readonly max: number, readonly queueMs: number) {}

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Takes a slot now if one is free. */
  tryEnter(): boolean {
    if (this.#active < this.max) {
      this.#active++;
      return true;
    }
    return false;
  }

  /** Waits for a slot; resolves false if none came within `queueMs` (or the queue is full). */
  wait(): Promise<boolean> {
    if (this.queueMs <= 0 || this.#waiters.length >= this.max) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = {
        admit: () => {
          clearTimeout(waiter.timer);
          resolve(true);
        },
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve(false);
        }, this.queueMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Frees a slot; hands it straight to the first waiter. */
  leave(): void {
    const next = this.#waiters.shift();
    if (next) next.admit(); // the slot passes on; #active unchanged
    else this.#active--;
  }
}
