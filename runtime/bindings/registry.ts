/**
 * Host-side binding registry: binding kind → plugin. One line per binding
 * kind (the worker side is `stubs.worker.ts`).
 */
import type { BindingPlugin } from "./types.ts";
import { kvPlugin } from "./kv/host.ts";
import { queuePlugin } from "./queue/host.ts";
import { durableObjectPlugin } from "./durable_object/host.ts";

export const PLUGINS: Record<string, BindingPlugin> = {
  kv: kvPlugin,
  queue: queuePlugin,
  durable_object: durableObjectPlugin,
};
