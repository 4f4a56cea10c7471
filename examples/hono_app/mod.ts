/**
 * A Hono app as a tenant: the app itself is the default export (it has a
 * `fetch` method). Uses real Hono middleware: request ids, secure headers,
 * CORS, ETag and JSON validation errors.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { etag } from "hono/etag";
import { secureHeaders } from "hono/secure-headers";
import { requestId } from "hono/request-id";
import { HTTPException } from "hono/http-exception";

type Env = { Bindings: { APP_NAME?: string } };

const app = new Hono<Env>({ strict: false }).basePath("/api");

app.use("*", requestId(), secureHeaders(), cors(), etag());

app.get("/", (c) => c.json({ app: c.env.APP_NAME ?? "hono-app", requestId: c.get("requestId") }));

const items = new Map<number, { id: number; name: string }>();
let nextId = 1;

app.get("/items", (c) => c.json([...items.values()]));

app.post("/items", async (c) => {
  const body = await c.req.json().catch(() => null);
  if (!body || typeof body.name !== "string" || body.name.length === 0) {
    throw new HTTPException(400, { message: 'expected JSON like {"name": "…"}' });
  }
  const item = { id: nextId++, name: body.name };
  items.set(item.id, item);
  return c.json(item, 201);
});

app.onError((err, c) => {
  if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
  console.error(err);
  return c.json({ error: "internal error" }, 500);
});

export default app;
