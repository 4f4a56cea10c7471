/**
 * A counter per path in Workers KV. `GET /<anything>` increments and returns
 * the count for that path; `GET /?list` lists every counter.
 */
import type { ExportedHandler, KVNamespace } from "../../mod.ts";

interface Env {
  COUNTS: KVNamespace;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.searchParams.has("list")) {
      const { keys } = await env.COUNTS.list({ prefix: "count:" });
      const counts: Record<string, number> = {};
      for (const k of keys) counts[k.name.slice(6)] = Number(await env.COUNTS.get(k.name));
      return Response.json(counts);
    }
    const key = `count:${url.pathname}`;
    const n = Number(await env.COUNTS.get(key) ?? 0) + 1;
    await env.COUNTS.put(key, String(n), { metadata: { updated: new Date().toISOString() } });
    return Response.json({ path: url.pathname, count: n });
  },
} satisfies ExportedHandler<Env>;
