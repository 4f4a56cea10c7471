/**
 * Inside a tenant worker: reaches a class of Deno's node compatibility bindings
 * (`process.binding(module)[name]`: the handle classes under `node:net`, `node:dgram`…), so the
 * guards can patch their prototypes before tenant code runs. Tenant code reaches the same
 * classes (the binding, or the `constructor` of a socket's `_handle`), so the guards sit on the
 * prototypes, not on the modules above them.
 */
import process from "node:process";

// deno-lint-ignore no-explicit-any
type Any = any;

/** libuv's EACCES (Linux and macOS): what a refused handle operation completes with. */
export const UV_EACCES = -13;

/** `process.binding(module)[name]` (Deno nests it under `default`), if there is one. */
export function nodeBindingClass(module: string, name: string): Any {
  try {
    const b = (process as Any).binding(module);
    return (b?.default ?? b)?.[name];
  } catch {
    return undefined;
  }
}
