// The benchmark tenant: the same answer as bare_server.ts.
export default { fetch: () => new Response("hello") };
