/**
 * A counter per name, kept exact under any concurrency by a Durable Object.
 *
 * - `POST /<name>` (or `GET /<name>?inc`) increments the counter `<name>`
 *   and returns `{ name, count }`.
 * - `GET /<name>` returns it.
 *
 * Bound in worky.toml with `durable_objects = { COUNTER = "Counter" }`.
 */
import { DurableObject } from "worky";
import type { DurableObjectNamespace, ExportedHandler } from "../../mod.ts";

interface Env {
  COUNTER: DurableObjectNamespace<Counter>;
}

export class Counter extends DurableObject<Env> {
  async increment(by = 1): Promise<number> {
    const n = ((await this.ctx.storage.get<number>("n")) ?? 0) + by;
    await this.ctx.storage.put("n", n);
    return n;
  }

  async value(): Promise<number> {
    return (await this.ctx.storage.get<number>("n")) ?? 0;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const name = url.pathname.split("/").filter(Boolean).pop() ?? "default";
    const counter = env.COUNTER.getByName(name);
    const increment = request.method === "POST" || url.searchParams.has("inc");
    const count = increment ? await counter.increment() : await counter.value();
    return Response.json({ name, count });
  },
} satisfies ExportedHandler<Env>;
