// Baseline for the throughput figure: bare Deno.serve, same answer as hello.ts.
Deno.serve(
  { port: Number(Deno.args[0]), hostname: "127.0.0.1", onListen() {} },
  () => new Response("hello"),
);
