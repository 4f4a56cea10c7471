import { expect, test } from "vitest";
test("worker", async () => {
  const w = new Worker(new URL("./w.worker.ts", import.meta.url), { type: "module", deno: { permissions: "none" } } as WorkerOptions);
  const got = await new Promise((r) => { w.onmessage = (e) => r(e.data); w.postMessage(1); });
  w.terminate();
  expect(got).toBe(2);
  expect(typeof Deno.version.deno).toBe("string");
});
