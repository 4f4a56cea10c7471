/**
 * Callers resumed one per turn of the event loop, in the order they asked. For work that piled
 * up behind one event and would otherwise all resume in the same turn: the thread that serves
 * every tenant then runs it in slices, with other requests' callbacks between them.
 *
 * @module
 */

/**
 * A queue of turns: {@link next} resolves after what it waits for settled and every earlier
 * caller had its turn, in a later macrotask than the caller before it.
 *
 * @example
 * ```ts
 * import { EventTurns } from "./event_turns.ts";
 * const turns = new EventTurns();
 * const ready = Promise.resolve();
 * await Promise.all([1, 2, 3].map((i) => turns.next(ready).then(() => console.log(i))));
 * // 1, 2 and 3 each log in a turn of its own
 * ```
 */
export class EventTurns {
  #last: Promise<void> = Promise.resolve();

  /** Resolves once `after` settled (fulfilled or rejected) and the callers before had theirs. */
  next(after: Promise<unknown> = Promise.resolve()): Promise<void> {
    const settled = after.then(() => {}, () => {});
    const turn = Promise.all([this.#last, settled]).then(() =>
      new Promise<void>((resolve) => setTimeout(resolve, 0))
    );
    this.#last = turn;
    return turn;
  }
}
