/**
 * The tenant's EventSource (runtime/egress_eventsource.worker.ts), built on a
 * fetch function: here the real fetch against a real server on 127.0.0.1.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { guardedEventSource } from "../../runtime/egress_eventsource.worker.ts";

const ES = guardedEventSource((input, init) => fetch(input, init));
let server: Deno.HttpServer<Deno.NetAddr>;
let base = "";
const seen: { path: string; lastEventId: string | null; accept: string | null }[] = [];

/** A body sent in the given pieces (to split lines and CRLF across chunks). */
function pieces(parts: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    async pull(c) {
      const next = parts.shift();
      if (next === undefined) return c.close();
      await new Promise((r) => setTimeout(r, 2));
      c.enqueue(enc.encode(next));
    },
  });
}

beforeAll(async () => {
  const ready = Promise.withResolvers<void>();
  server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => ready.resolve() },
    (req) => {
      const path = new URL(req.url).pathname;
      seen.push({
        path,
        lastEventId: req.headers.get("last-event-id"),
        accept: req.headers.get("accept"),
      });
      const sse = { "content-type": "text/event-stream; charset=utf-8" };
      if (path === "/parse") {
        return new Response(
          pieces([
            "\uFEFF: a comment\r",
            "\ndata: one\r\n\r\nevent: custom\ndata: two\nda",
            "ta:three\nid: 7\n\n",
            "data\n\ndata: unterminated",
          ]),
          { headers: sse },
        );
      }
      if (path === "/reconnect") {
        const n = seen.filter((s) => s.path === "/reconnect").length;
        return new Response(`retry: 20\nid: n${n}\ndata: ${n}\n\n`, { headers: sse });
      }
      if (path === "/html") {
        return new Response("<p>", { headers: { "content-type": "text/html" } });
      }
      return new Response("gone", { status: 404, headers: sse });
    },
  );
  await ready.promise;
  base = `http://127.0.0.1:${server.addr.port}`;
});
afterAll(() => server?.shutdown());

it("parses fields, types, ids, comments, CRLF and lines split across chunks", async () => {
  const es = new ES(`${base}/parse`);
  const got: [string, string, string][] = [];
  const done = Promise.withResolvers<void>();
  let opened = false;
  es.onopen = () => opened = true;
  es.onmessage = (e) => {
    got.push(["message", e.data, e.lastEventId]);
    if (got.length === 3) done.resolve();
  };
  es.addEventListener("custom", (e) => {
    const m = e as MessageEvent;
    got.push(["custom", m.data, m.lastEventId]);
    expect(m.origin).toBe(base);
  });
  await done.promise;
  es.close();
  expect(opened).toBe(true);
  expect(got).toEqual([
    ["message", "one", ""],
    ["custom", "two\nthree", "7"],
    ["message", "", "7"], // a bare "data" line is an empty data field
  ]);
  expect(es.readyState).toBe(ES.CLOSED);
  expect(seen.find((s) => s.path === "/parse")?.accept).toBe("text/event-stream");
});

it("reconnects after the stream ends, after `retry`, sending Last-Event-ID", async () => {
  const es = new ES(`${base}/reconnect`);
  const data: string[] = [];
  let errors = 0;
  const done = Promise.withResolvers<void>();
  es.onerror = () => errors++;
  es.onmessage = (e) => {
    data.push(e.data);
    if (data.length === 3) done.resolve();
  };
  await done.promise;
  es.close();
  expect(data).toEqual(["1", "2", "3"]);
  expect(errors).toBeGreaterThanOrEqual(2);
  const ids = seen.filter((s) => s.path === "/reconnect").map((s) => s.lastEventId);
  expect(ids.slice(0, 3)).toEqual([null, "n1", "n2"]);
});

it("fails without reconnecting on a non-200 status or another content type", async () => {
  for (const path of ["/missing", "/html"]) {
    const before = seen.length;
    const es = new ES(`${base}${path}`);
    const err = await new Promise<ErrorEvent>((resolve) =>
      es.onerror = (e) => resolve(e as ErrorEvent)
    );
    expect(es.readyState).toBe(ES.CLOSED);
    expect(err.message).toMatch(path === "/html" ? /text\/html/ : /status 404/);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.length - before).toBe(1);
  }
});

it("a refused fetch closes it for good; a bad URL throws SyntaxError", async () => {
  const refuse = guardedEventSource(() =>
    Promise.reject(
      Object.assign(new TypeError("egress refused"), { code: "ERR_PERMISSION_DENIED" }),
    )
  );
  const es = new refuse("http://127.0.0.1:1/");
  const err = await new Promise<ErrorEvent>((resolve) =>
    es.onerror = (e) => resolve(e as ErrorEvent)
  );
  expect(err.message).toMatch(/egress refused/);
  expect(es.readyState).toBe(2);
  expect(() => new ES("http://[::1")).toThrow(/not a valid URL/);
});
