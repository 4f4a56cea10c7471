/**
 * Turns a tenant's config and its bundled code into the runtime's
 * DeploymentSpec: explicit permissions, vars, binding specs (KV namespaces
 * scoped to the tenant) and pool limits.
 */
import type { TenantConfig } from "./config/types.ts";
import type { DeploymentSpec } from "../runtime/deployment.ts";
import type { BindingSpec } from "../runtime/bindings/types.ts";
import { toWorkerPermissions } from "../runtime/permissions.ts";

/** The storage namespace of a tenant's KV binding; tenants never share one. */
export function kvNamespace(tenant: string, binding: string): string {
  return `${tenant}/${binding}`;
}

export function bindingSpecs(tenant: TenantConfig): BindingSpec[] {
  return [
    ...tenant.kv.map((name) => ({
      name,
      kind: "kv",
      config: { namespace: kvNamespace(tenant.name, name) },
    })),
    ...queueBindingSpecs(tenant),
    ...durableObjectBindingSpecs(tenant),
  ];
}

/** Durable Object bindings: `env.<NAME>` is the namespace of an exported class. */
export function durableObjectBindingSpecs(tenant: TenantConfig): BindingSpec[] {
  return Object.entries(tenant.durableObjects ?? {}).map(([name, className]) => ({
    name,
    kind: "durable_object",
    config: { tenant: tenant.name, className },
  }));
}

/** Queue producer bindings: `env.<NAME>` sends to the queue named in config. */
export function queueBindingSpecs(tenant: TenantConfig): BindingSpec[] {
  return Object.entries(tenant.queues ?? {}).map(([name, queue]) => ({
    name,
    kind: "queue",
    config: { queue },
  }));
}

export function deploymentSpec(
  tenant: TenantConfig,
  code: { code: string; version: string },
): DeploymentSpec {
  return {
    tenant: tenant.name,
    version: code.version,
    code: code.code,
    permissions: toWorkerPermissions(tenant.permissions),
    vars: tenant.vars,
    bindings: bindingSpecs(tenant),
    limits: {
      timeoutMs: tenant.limits.timeoutMs,
      cpuMs: tenant.limits.cpuMs,
      maxWorkers: tenant.limits.maxWorkers,
      maxConcurrencyPerWorker: tenant.limits.maxConcurrencyPerWorker,
      minWorkers: Math.min(tenant.limits.minWorkers, tenant.limits.maxWorkers),
      idleMs: tenant.limits.idleTimeoutMs,
    },
    egress: { net: tenant.permissions.net, allowPrivate: tenant.egress?.allowPrivate ?? [] },
    workerLimits: {
      subrequests: tenant.limits.subrequests ?? 0,
      memoryMb: tenant.limits.memoryMb ?? 0,
    },
  };
}
