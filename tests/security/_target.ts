/** A real HTTP server on 127.0.0.1 that counts the requests that reach it. */
export interface Target {
  port: number;
  url: string;
  hits: number;
  close(): Promise<void>;
}

/** Starts a target; `handler` answers (default: 200 "reached"). */
export function startTarget(handler?: (req: Request) => Response): Promise<Target> {
  const ready = Promise.withResolvers<Target>();
  const target = { hits: 0 } as Target;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => {
      target.port = port;
      target.url = `http://127.0.0.1:${port}`;
      ready.resolve(target);
    },
  }, (req) => {
    target.hits++;
    return handler ? handler(req) : new Response("reached");
  });
  target.close = () => server.shutdown();
  return ready.promise;
}
