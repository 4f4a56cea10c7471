/**
 * The core, end to end: a real server on an ephemeral port, real workers,
 * real esbuild, a real libSQL file.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Fixture, rawRequest, startFixture, until } from "../_helpers/fixture.ts";

const TOML = `
[tenants.hello]
module = "hello.ts"
routes = ["hello.localhost/*", "*/hello/*"]
vars = { GREETING = "Hi", SECRET_TOKEN = "s3cr3t" }

[tenants.other]
module = "other.ts"
routes = ["other.localhost/*", "*.apps.localhost/*"]

[tenants.streams]
module = "streams.ts"
routes = ["*/streams/*"]
[tenants.streams.limits]
max_workers = 1

[tenants.faulty]
module = "faulty.ts"
routes = ["*/faulty/*"]
[tenants.faulty.limits]
timeout_ms = 300
max_workers = 1

[tenants.looper]
module = "looper.ts"
routes = ["*/looper/*"]
[tenants.looper.limits]
timeout_ms = 20000
max_concurrency_per_worker = 1
`;

const FILES: Record<string, string> = {
  "worky.toml": TOML,
  "hello.ts": `
    import { shout } from "./lib/shout.ts";
    export default {
      async fetch(req: Request, env: Record<string, unknown>) {
        const url = new URL(req.url);
        if (url.pathname === "/hello/env") {
          return Response.json({
            greeting: env.GREETING,
            onGlobal: Object.keys(globalThis).filter((k) => /GREETING|SECRET/.test(k)),
            secretOnGlobal: (globalThis as any).SECRET_TOKEN ?? null,
          });
        }
        if (url.pathname === "/hello/log") {
          console.log("hello from", url.pathname, { n: 1 });
          console.error("an error line");
          return new Response("logged");
        }
        if (url.pathname === "/hello/print") { // every other way to print
          console.table([{ a: 1 }]);
          console.dir({ dir: 1 });
          console.dirxml("dirxml line");
          console.group("group label");
          console.count("counted");
          console.assert(false, "assertion text");
          await Deno.stdout.write(new TextEncoder().encode("deno stdout line\\n"));
          Deno.stderr.writeSync(new TextEncoder().encode("deno stderr line\\n"));
          const w = Deno.stdout.writable.getWriter();
          await w.write(new TextEncoder().encode("stdout writable line"));
          w.releaseLock();
          const { default: process } = await import("node:process");
          process.stdout.write("process stdout line\\n");
          process.stderr.write("process stderr line\\n");
          return new Response(String(await Deno.stdin.read(new Uint8Array(8))));
        }
        return new Response(shout(String(env.GREETING)) + " " + url.pathname);
      },
    };`,
  "lib/shout.ts": `export const shout = (s: string) => s.toUpperCase();`,
  "other.ts":
    `export default { fetch: (req: Request) => new Response("other " + new URL(req.url).host) };`,
  "streams.ts": `
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    export default {
      async fetch(req: Request, _env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) {
        const url = new URL(req.url);
        switch (url.pathname) {
          case "/streams/echo": {
            // count bytes as they stream in, then answer with a digest of them
            let n = 0; const parts: Uint8Array[] = [];
            for await (const chunk of req.body!) { n += chunk.length; parts.push(chunk); }
            const all = new Uint8Array(n); let o = 0; for (const p of parts) { all.set(p, o); o += p.length; }
            const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
            return new Response(digest, { headers: { "x-bytes": String(n) } });
          }
          case "/streams/sse": {
            const enc = new TextEncoder();
            const body = new ReadableStream({
              async start(c) {
                c.enqueue(enc.encode("data: first\\n\\n"));
                await released;
                c.enqueue(enc.encode("data: second\\n\\n"));
                c.close();
              },
            });
            return new Response(body, { headers: { "content-type": "text/event-stream" } });
          }
          case "/streams/release":
            release();
            return new Response("released");
          case "/streams/binary": {
            const bytes = new Uint8Array(256); for (let i = 0; i < 256; i++) bytes[i] = i;
            return new Response(bytes, { status: 201, headers: { "content-type": "application/octet-stream" } });
          }
          case "/streams/big": // big complete bodies cross as transferred bytes
            return new Response("é€x".repeat(100_000) + "end", { headers: { "x-kind": "text" } });
          case "/streams/bigbytes": {
            const bytes = new Uint8Array(300_000); for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
            return new Response(bytes.buffer);
          }
          case "/streams/biglie": // a content-length that isn't the body's: the body's wins
            return new Response("q".repeat(100_000), { headers: { "content-length": "7" } });
          case "/streams/cached": // the same big Response answered twice: the second streams
            (globalThis as any).cached ??= new Response("z".repeat(200_000));
            return (globalThis as any).cached;
          case "/streams/cookies": {
            const h = new Headers();
            h.append("set-cookie", "a=1; Path=/");
            h.append("set-cookie", "b=2; Path=/");
            h.set("x-custom", "yes");
            return new Response(null, { status: 204, headers: h });
          }
          case "/streams/wait": {
            const key = url.searchParams.get("key")!;
            ctx.waitUntil(released.then(() => { (globalThis as any).done ??= []; (globalThis as any).done.push(key); }));
            return new Response("responded");
          }
          case "/streams/done":
            return Response.json((globalThis as any).done ?? []);
        }
        return new Response("no", { status: 404 });
      },
    };`,
  "faulty.ts": `
    export default {
      async fetch(req: Request) {
        const path = new URL(req.url).pathname;
        if (path === "/faulty/loop") { while (true) {} }
        if (path === "/faulty/throw") throw new Error("tenant exploded");
        if (path === "/faulty/reject") { Promise.reject(new Error("nobody caught me")); return new Response("still here"); }
        if (path === "/faulty/later") { setTimeout(() => { throw new Error("thrown in a timer"); }, 0); return new Response("scheduled"); }
        if (path === "/faulty/exit") { Deno.exit(1); }
        if (path === "/faulty/notresponse") return "a string" as unknown as Response;
        return new Response("fine");
      },
    };`,
  "looper.ts": `
    export default {
      fetch(req: Request) {
        if (new URL(req.url).pathname === "/looper/spin") { while (true) {} }
        return new Response("ok");
      },
    };`,
};

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture(FILES);
});
afterAll(async () => {
  await fx?.close();
});

describe("routing", () => {
  test("by path", async () => {
    const res = await fx.fetch("/hello/x");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("HI /hello/x");
  });

  test("by host, exact and wildcard subdomain", async () => {
    const a = await rawRequest(fx.url, "hello.localhost", "/anything");
    expect(a.body).toBe("HI /anything");
    const b = await rawRequest(fx.url, "other.localhost:8787", "/");
    expect(b.body).toBe("other other.localhost:8787");
    const c = await rawRequest(fx.url, "shop.apps.localhost", "/");
    expect(c.body).toBe("other shop.apps.localhost");
  });

  test("no match is a 404 JSON error with a request id", async () => {
    const res = await rawRequest(fx.url, "nobody.localhost", "/x");
    expect(res.status).toBe(404);
    const body = JSON.parse(res.body);
    expect(body.error.code).toBe("ERR_NO_ROUTE");
    expect(body.error.message).toContain("nobody.localhost/x");
    expect(typeof body.requestId).toBe("string");
  });

  test("health", async () => {
    const res = await fx.fetch("/_worky/health");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe("ok");
    expect(body.tenants.map((t: { tenant: string }) => t.tenant).sort()).toEqual(
      ["faulty", "hello", "looper", "other", "streams"],
    );
  });
});

describe("env", () => {
  test("vars are on env and never on globalThis", async () => {
    const body = await (await fx.fetch("/hello/env")).json();
    expect(body).toEqual({ greeting: "Hi", onGlobal: [], secretOnGlobal: null });
  });

  test("console output becomes log lines tagged with tenant and request id", async () => {
    await (await fx.fetch("/hello/log")).text();
    await until(() => fx.logger.entries.some((e) => e.msg === "an error line"));
    const info = fx.logger.entries.find((e) => e.msg.startsWith("hello from /hello/log"))!;
    expect(info).toMatchObject({ level: "info", tenant: "hello" });
    expect(info.msg).toBe("hello from /hello/log { n: 1 }");
    const err = fx.logger.entries.find((e) => e.msg === "an error line")!;
    expect(err.level).toBe("error");
    expect(err.requestId).toBe(info.requestId);
    expect(typeof info.requestId).toBe("string");
  });

  test("every other way to print (console.table, Deno.stdout, process.stdout…) is a log line too", async () => {
    expect(await (await fx.fetch("/hello/print")).text()).toBe("null"); // stdin reads as empty
    const expected: [RegExp, string][] = [
      [/│ \(index\) │ a │/, "info"],
      [/^\{ dir: 1 \}$/, "info"],
      [/^dirxml line$/, "info"],
      [/^group label$/, "info"],
      [/counted: 1$/, "info"],
      [/Assertion failed: assertion text$/, "error"],
      [/^deno stdout line$/, "info"],
      [/^deno stderr line$/, "error"],
      [/^stdout writable line$/, "info"],
      [/^process stdout line$/, "info"],
      [/^process stderr line$/, "error"],
    ];
    await until(() => fx.logger.entries.some((e) => e.msg === "process stderr line"));
    for (const [re, level] of expected) {
      const e = fx.logger.entries.find((e) => re.test(e.msg));
      expect(e, String(re)).toMatchObject({ level, tenant: "hello" });
      expect(typeof e!.requestId).toBe("string");
    }
  });
});

describe("bodies and headers", () => {
  test("request body streams in (4 MiB) and binary response comes back intact", async () => {
    const size = 4 * 1024 * 1024;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= size) return c.close();
        c.enqueue(data.subarray(sent, sent + 65536));
        sent += 65536;
      },
    });
    const res = await fx.fetch(
      "/streams/echo",
      { method: "POST", body, duplex: "half" } as RequestInit,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-bytes")).toBe(String(size));
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(expected);
  });

  test("a streamed response reaches the client chunk by chunk", async () => {
    const res = await fx.fetch("/streams/sse");
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const first = await reader.read();
    // the tenant is still blocked before its second chunk: we got the first alone
    expect(new TextDecoder().decode(first.value)).toBe("data: first\n\n");
    expect(await (await fx.fetch("/streams/release")).text()).toBe("released");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toBe("data: second\n\n");
  });

  test("binary body, status and content-type intact", async () => {
    const res = await fx.fetch("/streams/binary");
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(256);
    expect(bytes.every((b, i) => b === i)).toBe(true);
  });

  test("big complete bodies (text and bytes) arrive whole", async () => {
    const text = await fx.fetch("/streams/big");
    expect(text.headers.get("x-kind")).toBe("text");
    expect(await text.text()).toBe("é€x".repeat(100_000) + "end");
    const bytes = new Uint8Array(await (await fx.fetch("/streams/bigbytes")).arrayBuffer());
    expect(bytes.length).toBe(300_000);
    expect(bytes.every((b, i) => b === i % 251)).toBe(true);
    // on the wire: one content-length, the body's, not chunked (the host hands the worker's
    // buffer to the socket without copying it); HEAD gets the length and no body
    for (
      const [path, length] of [["/streams/big", 600_003], ["/streams/biglie", 100_000]] as const
    ) {
      const raw = await rawRequest(fx.url, "localhost", path);
      expect(raw.status).toBe(200);
      expect(raw.headers.filter(([k]) => k === "content-length")).toEqual([
        ["content-length", String(length)],
      ]);
      expect(raw.headers.some(([k]) => k === "transfer-encoding")).toBe(false);
      expect(new TextEncoder().encode(raw.body).length).toBe(length);
    }
    const head = await rawRequest(fx.url, "localhost", "/streams/bigbytes", "HEAD");
    expect(head.headers).toContainEqual(["content-length", "300000"]);
    expect(head.body).toBe("");
    for (let i = 0; i < 2; i++) {
      const res = await fx.fetch("/streams/cached");
      expect(res.status).toBe(200);
      expect((await res.text()).length).toBe(200_000);
    }
  });

  test("multiple set-cookie headers survive", async () => {
    const res = await fx.fetch("/streams/cookies");
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    expect(res.headers.get("x-custom")).toBe("yes");
  });
});

describe("waitUntil", () => {
  test("work continues after the response is sent", async () => {
    // /streams/release was already called above in the SSE test, so use a fresh gate:
    // waitUntil work awaits `released`, which resolves at once now; assert it ran after.
    const res = await fx.fetch("/streams/wait?key=k1");
    expect(await res.text()).toBe("responded");
    await until(async () => (await (await fx.fetch("/streams/done")).json()).includes("k1"));
  });
});

describe("failures", () => {
  test("timeout → 504 JSON with request id, then a fresh worker answers", async () => {
    const res = await fx.fetch("/faulty/loop");
    expect(res.status).toBe(504);
    const body = await res.json();
    expect(body.error.code).toBe("ERR_TENANT_TIMEOUT");
    expect(body.requestId).toBeTruthy();
    const next = await fx.fetch("/faulty/ok");
    expect(next.status).toBe(200);
    expect(await next.text()).toBe("fine");
  });

  test("uncaught exception → 500 JSON, stack in the log names the tenant's file, then recovery", async () => {
    const res = await fx.fetch("/faulty/throw");
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.error.code).toBe("ERR_TENANT_EXCEPTION");
    expect(body.error.message).toContain("tenant exploded");
    const logged = fx.logger.entries.find((e) =>
      e.msg.includes("tenant exploded") && e.level === "error"
    );
    expect(logged?.msg).toMatch(/\/faulty\.ts:6:\d+/); // source-mapped: the tenant file, line 6
    expect((await fx.fetch("/faulty/ok")).status).toBe(200);
  });

  test("an unhandled rejection or a timer's throw is logged, the worker serves on", async () => {
    const stats = () => fx.server.deployments.get("faulty")!.current.stats();
    await (await fx.fetch("/faulty/ok")).text();
    const recycled = stats().recycled;
    const res = await fx.fetch("/faulty/reject");
    expect(res.status).toBe(200); // as on Workers: the response stands
    expect(await res.text()).toBe("still here");
    expect(await (await fx.fetch("/faulty/later")).text()).toBe("scheduled");
    await until(() =>
      fx.logger.entries.some((e) => e.level === "error" && e.msg.includes("thrown in a timer"))
    );
    const logged = fx.logger.entries.find((e) => e.msg.includes("nobody caught me"));
    expect(logged).toMatchObject({ level: "error", tenant: "faulty" });
    expect(logged!.msg).toMatch(/^Uncaught \(in promise\) Error: nobody caught me/);
    expect(
      fx.logger.entries.find((e) => e.msg.includes("thrown in a timer"))!.msg,
    ).toMatch(/^Uncaught Error: thrown in a timer/);
    expect(stats().recycled).toBe(recycled); // no worker was replaced
    expect((await fx.fetch("/faulty/ok")).status).toBe(200);
  });

  test("Deno.exit in a tenant does not stop the server", async () => {
    const res = await fx.fetch("/faulty/exit");
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect((await fx.fetch("/faulty/ok")).status).toBe(200);
    expect((await fx.fetch("/hello/x")).status).toBe(200);
  });

  test("a handler returning a non-Response is a 500 that says so", async () => {
    const res = await fx.fetch("/faulty/notresponse");
    expect(res.status).toBe(500);
    expect((await res.json()).error.message).toContain("must return a Response");
  });

  test("a tenant stuck in while(true) does not stop other tenants answering", async () => {
    const spinning = fx.fetch("/looper/spin"); // occupies one looper worker for 20 s
    const results = [];
    for (let i = 0; i < 50; i++) results.push((await fx.fetch(`/hello/${i}`)).status);
    expect(results.every((s) => s === 200)).toBe(true);
    // and the looper tenant itself still answers on another worker (concurrency 1 per worker)
    expect((await fx.fetch("/looper/ok")).status).toBe(200);
    await fx.server.deployments.get("looper")!.current.drain(0);
    expect((await spinning).status).toBeGreaterThanOrEqual(500);
  });
});
