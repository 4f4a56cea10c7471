/** A tenant loads a native library (FFI). */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const f = evilTenant(
  `
  const lib = Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } });
  return lib.symbols.getpid();
`,
  "",
  { beforeAll, afterAll },
);

attempt("Deno.dlopen libc", async () => {
  const { body } = await ask(f(), "evil");
  expect(body.ok).toBe(false);
  expect(String(body.message)).toMatch(/Requires ffi access|not a function|unstable/i);
});
