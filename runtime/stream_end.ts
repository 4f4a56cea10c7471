/**
 * A stream that calls back once when it is over: read to its end, failed, or cancelled by its
 * reader. The host uses it to keep charging an event whose tenant code still produces its body.
 *
 * @module
 */

/**
 * `stream`, passed through, calling `done` once when it ended, errored or was cancelled. When
 * `signal` aborts first, the stream errors with its reason (the producer is gone: a stream
 * transferred from a terminated worker would otherwise never end).
 *
 * @example
 * ```ts
 * import { onStreamEnd } from "./stream_end.ts";
 * const body = onStreamEnd(new Response("hi").body!, () => console.log("body over"));
 * await new Response(body).text(); // logs "body over"
 * ```
 */
export function onStreamEnd<T>(
  stream: ReadableStream<T>,
  done: () => void,
  signal?: AbortSignal,
): ReadableStream<T> {
  let ended = false;
  const end = () => {
    if (!ended) done();
    ended = true;
  };
  // flush: read to the end; cancel: the reader cancelled, or the source errored (pipeThrough
  // aborts the writable side, which cancels the transformer)
  return stream.pipeThrough(
    new TransformStream<T, T>({
      start(ctl) {
        signal?.addEventListener("abort", () => {
          ctl.error(signal.reason);
          end();
        }, { once: true });
      },
      flush: end,
      cancel: end,
    }),
  );
}
