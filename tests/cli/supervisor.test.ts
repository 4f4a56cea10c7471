/**
 * `worky serve` supervises its server: a real `cli/main.ts serve` child whose inner server
 * is killed with SIGKILL is restarted on the same port and serves again; SIGTERM stops both;
 * a kill -9 of the supervisor itself leaves no orphan server behind.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until, writeTree } from "../_helpers/fixture.ts";
import { restartDelayMs } from "../../cli/supervisor.ts";
import { startSupervised } from "../_helpers/worky_process.ts";

let dir = "";
beforeAll(async () => {
  dir = await writeTree({
    "hello.ts": `export default { fetch: () => new Response("hello " + Deno.pid) };`,
    "worky.toml": `[tenants.hello]\nmodule = "hello.ts"\nroutes = ["*/*"]\n`,
  });
});
afterAll(async () => {
  if (dir) await Deno.remove(dir, { recursive: true });
});

const alive = (pid: number) => {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
};

async function get(url: string): Promise<string> {
  const res = await fetch(url);
  return `${res.status} ${await res.text()}`;
}

describe("supervisor", () => {
  it("backs off restarts of a crash-looping server", () => {
    expect([1, 2, 3, 4, 8, 20].map(restartDelayMs)).toEqual([100, 200, 400, 800, 10000, 10000]);
  });

  it("restarts a kill -9'd server on the same port; SIGTERM stops both", async () => {
    const s = startSupervised(`${dir}/worky.toml`);
    try {
      await until(() => s.urls().length === 1, 30_000);
      const [url] = s.urls();
      const [first] = s.pids();
      expect(await get(url)).toBe(`200 hello ${first}`);

      Deno.kill(first, "SIGKILL");
      await until(() => s.urls().length === 2, 30_000);
      const exit = s.lines.find((l) => String(l.msg).includes(`process ${first} exited`))!;
      expect(exit).toMatchObject({ level: "error", signal: "SIGKILL" });
      expect(String(exit.msg)).toMatch(/restarting in 100 ms$/);
      const second = s.pids()[1];
      expect(second).not.toBe(first);
      expect(s.urls()[1]).toBe(url); // pinned to the port clients already use
      expect(await get(url)).toBe(`200 hello ${second}`);

      s.proc.kill("SIGTERM");
      const status = await s.proc.status;
      expect(status.code).toBe(0);
      await until(() => !alive(second));
      expect(s.pids()).toHaveLength(2); // no restart after a stop
    } finally {
      try {
        s.proc.kill("SIGKILL");
      } catch { /* ended */ }
    }
  }, 90_000);

  it("a kill -9 of the supervisor takes the server down with it (no orphan)", async () => {
    const s = startSupervised(`${dir}/worky.toml`);
    await until(() => s.urls().length === 1, 30_000);
    const [inner] = s.pids();
    s.proc.kill("SIGKILL");
    await s.proc.status;
    await until(() => !alive(inner), 15_000);
  }, 60_000);
});
