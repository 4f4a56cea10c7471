/**
 * The smallest tenant: Workers module format, a var from worky.toml, and
 * `ctx.waitUntil` for work after the response.
 */
import type { ExportedHandler } from "../../mod.ts";

interface Env {
  GREETING: string;
}

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    const name = url.searchParams.get("name") ?? "world";
    ctx.waitUntil(Promise.resolve().then(() => console.log(`greeted ${name}`)));
    return new Response(`${env.GREETING}, ${name}!\n`, {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  },
} satisfies ExportedHandler<Env>;
