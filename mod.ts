/**
 * Worky's public surface.
 *
 * - For tenant authors: the types of a module (`ExportedHandler`,
 *   `ExecutionContext`, `KVNamespace`, …). Import them with `import type`.
 * - For embedders: `createServer(config)` starts Worky inside another Deno
 *   program (run it with `--unstable-worker-options`).
 *
 * @example Tenant module
 * ```ts
 * import type { ExportedHandler, KVNamespace } from "./mod.ts";
 * interface Env { COUNTS: KVNamespace }
 * export default {
 *   async fetch(request, env) {
 *     const n = Number(await env.COUNTS.get("n") ?? 0) + 1;
 *     await env.COUNTS.put("n", String(n));
 *     return Response.json({ n });
 *   },
 * } satisfies ExportedHandler<Env>;
 * ```
 *
 * @module
 */
import { loadConfig, parseConfigObject } from "./control-plane/config/load_config.ts";
import type { WorkyConfig } from "./control-plane/config/types.ts";
import { type ServerOptions, startServer, type WorkyServer } from "./control-plane/server.ts";

export type { ExecutionContext, ExportedHandler, FetchHandler } from "./runtime/tenant_types.ts";
export type {
  KVNamespace,
  KVNamespaceGetOptions,
  KVNamespaceListOptions,
  KVNamespaceListResult,
  KVNamespacePutOptions,
} from "./runtime/bindings/kv/types.ts";
/** Durable Objects: tenants `import { DurableObject } from "worky"` (or "cloudflare:workers"). */
export { DurableObject, WorkerEntrypoint } from "./runtime/tenant_api.worker.ts";
export type {
  AlarmInvocationInfo,
  DurableObjectId,
  DurableObjectKeyValue,
  DurableObjectListOptions,
  DurableObjectNamespace,
  DurableObjectState,
  DurableObjectStorage,
  DurableObjectStub,
  DurableObjectTransaction,
  SqlStorage,
  SqlStorageCursor,
  SqlStorageValue,
} from "./runtime/bindings/durable_object/types.ts";
/** WebSockets: the global `WebSocketPair`, `ctx.acceptWebSocket` in Durable Objects. */
export type {
  WebSocketData,
  WebSocketPairConstructor,
  WorkyCloseEvent,
  WorkyErrorEvent,
  WorkyMessageEvent,
  WorkyResponseInit,
  WorkyWebSocket,
} from "./runtime/websocket/types.ts";
/** Cron triggers and queues: `scheduled(controller, env, ctx)`, `queue(batch, env, ctx)`, `env.<QUEUE>`. */
export type { ScheduledController } from "./runtime/events/scheduled.worker.ts";
export type { Message, MessageBatch, QueueRetryOptions } from "./runtime/events/queue.worker.ts";
export type {
  MessageSendRequest,
  Queue,
  QueueContentType,
  QueueSendBatchOptions,
  QueueSendOptions,
} from "./runtime/bindings/queue/types.ts";
export type {
  LimitsConfig,
  PermissionsConfig,
  ServerConfig,
  TenantConfig,
  WorkyConfig,
} from "./control-plane/config/types.ts";
export type { WorkyServer } from "./control-plane/server.ts";
export type { LogEntry, Logger } from "./runtime/logger.ts";
export { type ErrorCode, WorkyError } from "./runtime/errors.ts";
export { loadConfig };

/** Options of {@link createServer} besides the config. */
export type CreateServerOptions = Omit<ServerOptions, "config"> & {
  /** Folder relative paths in a config object resolve against (default: cwd). */
  dir?: string;
};

/**
 * Starts a Worky server in this process from a config: a path to a
 * worky.toml, a config object with the same shape as the TOML (validated the
 * same way), or an already loaded {@link WorkyConfig}. Resolves once every
 * tenant is loaded and the server listens; rejects with a `WorkyError`
 * naming every problem otherwise.
 *
 * @example
 * ```ts
 * import { createServer } from "./mod.ts";
 * const server = await createServer({
 *   server: { port: 0 },
 *   tenants: {
 *     hello: { module: "./examples/hello/mod.ts", routes: ["*\/*"], vars: { GREETING: "Hi" } },
 *   },
 * });
 * console.log(await (await fetch(server.url)).text()); // "Hi, world!\n"
 * await server.close();
 * ```
 */
export async function createServer(
  config: string | WorkyConfig | Record<string, unknown>,
  options: CreateServerOptions = {},
): Promise<WorkyServer> {
  let resolved: WorkyConfig;
  if (typeof config === "string") resolved = await loadConfig(config);
  else if (isLoaded(config)) resolved = config;
  else resolved = parseConfigObject(config, { path: "<config>", dir: options.dir ?? Deno.cwd() });
  return startServer({ ...options, config: resolved });
}

function isLoaded(config: object): config is WorkyConfig {
  const c = config as Partial<WorkyConfig>;
  return Array.isArray(c.tenants) && typeof c.path === "string";
}
