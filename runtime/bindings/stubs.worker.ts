/**
 * Worker-side binding registry: binding kind → the factory of what the tenant
 * sees on `env`. One line per binding kind (the host side is `registry.ts`).
 */
import type { StubFactory } from "./types.ts";
import { createKvStub } from "./kv/stub.worker.ts";
import { createQueueStub } from "./queue/stub.worker.ts";
import { createDurableObjectStub } from "./durable_object/stub.worker.ts";

export const STUBS: Record<string, StubFactory> = {
  kv: createKvStub,
  queue: createQueueStub,
  durable_object: createDurableObjectStub,
};
