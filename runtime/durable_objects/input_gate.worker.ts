/**
 * The input gate of one Durable Object, as in Cloudflare: while the object
 * waits for its own storage (or runs `blockConcurrencyWhile`), no other event
 * is delivered to it. Once the storage call returns, the event that made it
 * continues first (its continuation runs in microtasks), and only at the next
 * macrotask is another waiting event let in, one at a time. So a
 * read-modify-write with no other await in between is atomic, while an
 * object awaiting `fetch()` or another object still takes other events
 * (no deadlock on call cycles).
 *
 * Worker code.
 *
 * @module
 */

/** Runs `fn` on the next macrotask (a MessageChannel, not clamped like nested timers). */
const nextTask: (fn: () => void) => void = (() => {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  return (fn) => {
    queue.push(fn);
    channel.port2.postMessage(null);
  };
})();

/**
 * One object's gate.
 *
 * @example
 * ```ts
 * import { InputGate } from "./input_gate.worker.ts";
 * const gate = new InputGate();
 * await gate.enter();
 * const value = await gate.hold(() => Promise.resolve(42)); // others wait meanwhile
 * console.log(value); // 42
 * ```
 */
export class InputGate {
  #held = 0;
  #waiting: (() => void)[] = [];
  #scheduled = false;

  /** Resolves when an event may run; immediately when the gate is open and nobody waits. */
  enter(): Promise<void> {
    if (this.#held === 0 && this.#waiting.length === 0 && !this.#scheduled) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#schedule();
    });
  }

  /**
   * Runs `fn` as soon as an event may run: synchronously now when the gate is
   * open and nobody waits, else from the gate's queue. Unlike `await enter()`
   * there is no microtask between admission and `fn`, so `fn`'s synchronous
   * part (up to its first storage call, which closes the gate) runs before
   * anything else can be let in, even when the worker dispatches several
   * messages without a macrotask between them.
   */
  run(fn: () => void): void {
    if (this.#held === 0 && this.#waiting.length === 0 && !this.#scheduled) {
      fn();
      return;
    }
    this.#waiting.push(fn);
    this.#schedule();
  }

  /** Keeps the gate closed while `fn` runs. */
  async hold<T>(fn: () => Promise<T> | T): Promise<T> {
    this.#held++;
    try {
      return await fn();
    } finally {
      this.#held--;
      this.#schedule();
    }
  }

  /** Events waiting to enter. */
  get waiting(): number {
    return this.#waiting.length;
  }

  #schedule() {
    if (this.#scheduled || this.#held > 0 || this.#waiting.length === 0) return;
    this.#scheduled = true;
    nextTask(() => {
      this.#scheduled = false;
      if (this.#held > 0) return; // closed again by the continuation; reopened by hold()
      this.#waiting.shift()?.();
      this.#schedule(); // the next one at the next macrotask, after this one's sync part
    });
  }
}
