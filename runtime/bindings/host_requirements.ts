/**
 * What a binding plugin's `createHost` checks before it builds a host: a
 * string in the binding's spec config, and a service the control plane must
 * provide. Errors name the tenant and the binding (`tenants.shop: KV binding "CART"`).
 *
 * @module
 */
import { type ErrorCode, WorkyError } from "../errors.ts";
import type { BindingSpec, HostBindingContext } from "./types.ts";

/** `tenants.<tenant>: <label> binding "<NAME>"`, the start of every message here. */
function bindingLabel(label: string, spec: BindingSpec, ctx: HostBindingContext): string {
  return `tenants.${ctx.tenant}: ${label} binding "${spec.name}"`;
}

/**
 * `spec.config[key]` when it is a non-empty string; else `ERR_CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * import { requireConfigString } from "./host_requirements.ts";
 * const spec = { name: "JOBS", kind: "queue", config: { queue: "jobs" } };
 * const ctx = { tenant: "shop", clock: { now: Date.now }, services: {} };
 * console.log(requireConfigString("queue", spec, ctx, "queue")); // "jobs"
 * ```
 */
export function requireConfigString(
  label: string,
  spec: BindingSpec,
  ctx: HostBindingContext,
  key: string,
): string {
  const value = spec.config?.[key];
  if (typeof value !== "string" || value === "") {
    throw new WorkyError(
      "ERR_CONFIG_INVALID",
      `${bindingLabel(label, spec, ctx)}: config.${key} must be a non-empty string ` +
        `(got ${JSON.stringify(value) ?? "undefined"})`,
    );
  }
  return value;
}

/** What {@link requireService} looks for. */
export interface ServiceRequirement {
  /** The key of `ctx.services`, e.g. `"kv"`. */
  service: string;
  /** What the binding needs, for the message, e.g. `"KV storage"`. */
  what: string;
  /** Extra shape check of a provided service. */
  valid?: (value: unknown) => boolean;
  /** Code of the error; default `ERR_INTERNAL` (the control plane's wiring is wrong). */
  code?: ErrorCode;
}

/**
 * `ctx.services[service]` when the control plane provided it; else an error
 * naming the binding and the missing service.
 *
 * @example
 * ```ts
 * import { requireService } from "./host_requirements.ts";
 * const spec = { name: "CART", kind: "kv", config: { namespace: "shop/CART" } };
 * const ctx = { tenant: "shop", clock: { now: Date.now }, services: {} };
 * try {
 *   requireService("KV", spec, ctx, { service: "kv", what: "KV storage" });
 * } catch (err) {
 *   console.log((err as Error).message);
 *   // tenants.shop: KV binding "CART" needs KV storage, but the control plane provided no services.kv
 * }
 * ```
 */
export function requireService<T>(
  label: string,
  spec: BindingSpec,
  ctx: HostBindingContext,
  requirement: ServiceRequirement,
): T {
  const value = ctx.services[requirement.service];
  if (value === undefined || value === null || (requirement.valid && !requirement.valid(value))) {
    throw new WorkyError(
      requirement.code ?? "ERR_INTERNAL",
      `${bindingLabel(label, spec, ctx)} needs ${requirement.what}, but the control plane ` +
        `provided no services.${requirement.service}`,
    );
  }
  return value as T;
}
