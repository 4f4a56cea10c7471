/**
 * The `durable_objects` key of a tenant: binding name on `env` → the name of
 * the class the tenant's module exports.
 *
 * ```toml
 * [tenants.shop]
 * durable_objects = { COUNTER = "Counter", ROOMS = "ChatRoom" }
 * ```
 *
 * A class the module does not export fails the deploy (checked when the
 * module loads in its worker).
 *
 * @module
 */
import { z } from "zod";

/** Class names: a JavaScript identifier (also a safe folder name for the object files). */
export const CLASS_NAME: RegExp = /^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/;

/**
 * `durable_objects` of a tenant (binding names are checked with the other bindings).
 *
 * @example
 * ```ts
 * import { durableObjectsSchema } from "./do_config.ts";
 * console.log(durableObjectsSchema.parse({ COUNTER: "Counter" })); // { COUNTER: "Counter" }
 * ```
 */
export const durableObjectsSchema = z.record(
  z.string(),
  z.string().regex(CLASS_NAME, {
    error: (iss) =>
      `${
        JSON.stringify(iss.input)
      } is not a class name (a JavaScript identifier: letters, digits, _ and $)`,
  }),
).default({});
