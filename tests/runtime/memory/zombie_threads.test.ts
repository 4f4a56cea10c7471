/**
 * Zombie detection with real workers (in a child process, see `zombie_threads_child.ts`) and the
 * quarantine record it feeds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "../../_helpers/fixture.ts";
import {
  QUARANTINE_FILE,
  quarantinePath,
  readQuarantine,
  recordQuarantine,
} from "../../../runtime/memory/quarantine.ts";
import { WorkyError } from "../../../runtime/errors.ts";

describe("zombie threads", () => {
  it(
    "finds the thread of a terminated spinning worker, not an idle one, and demotes it",
    async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-worker-options",
          `${REPO}tests/runtime/memory/zombie_threads_child.ts`,
        ],
        cwd: REPO,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      expect(out.code, stderr).toBe(0);
      const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
      // worker-<n> in creation order; the node:worker_threads worker took the number in between
      const ns = (r.threads as string[]).map((t) => Number(/^worker-(\d+)$/.exec(t)![1]));
      expect(ns[1]).toBe(ns[0] + 1);
      expect(ns[2]).toBe(ns[1] + 2);
      const [idle, spin, awaitLoop] = r.verdicts;
      expect(idle).toBeNull();
      expect(spin).toMatchObject({ tenant: "spin", name: r.threads[1], reason: "test" });
      expect(spin.cpu).toBeGreaterThan(0.1);
      expect(awaitLoop).toMatchObject({ tenant: "await", name: r.threads[2] });
      expect([...r.live].sort()).toEqual(["await", "spin"]); // verdicts may land in either order
      // the spinning threads were moved to SCHED_IDLE (5) soon after terminate(); the idle one ended
      expect(r.policies).toEqual([null, 5, 5]);
      expect(r.demoted).toBe(2);
    },
    60_000,
  );
});

describe("quarantine record", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await Deno.makeTempDir();
  });
  afterAll(async () => {
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("is empty before anything was recorded", async () => {
    expect(await readQuarantine(`${dir}/none`)).toEqual({});
  });

  it("records tenants with reason, time and count", async () => {
    const d = `${dir}/a`;
    const t0 = new Date("2025-01-02T03:04:05.000Z"), t1 = new Date("2025-01-02T03:05:00.000Z");
    expect(await recordQuarantine(d, "loop", "zombie worker-3", t0)).toEqual({
      reason: "zombie worker-3",
      at: t0.toISOString(),
      count: 1,
    });
    await Promise.all([
      recordQuarantine(d, "loop", "zombie worker-9", t1),
      recordQuarantine(d, "other", "zombie worker-5", t1),
    ]);
    expect(await readQuarantine(d)).toEqual({
      loop: { reason: "zombie worker-9", at: t1.toISOString(), count: 2 },
      other: { reason: "zombie worker-5", at: t1.toISOString(), count: 1 },
    });
    const raw = JSON.parse(await Deno.readTextFile(quarantinePath(d)));
    expect(raw.version).toBe(1);
    expect(Object.keys(raw.tenants)).toEqual(["loop", "other"]);
    expect([...Deno.readDirSync(d)].map((e) => e.name)).toEqual([QUARANTINE_FILE]); // no temp left
  });

  it("names the file when it is not a quarantine record, and keeps it when recording", async () => {
    const d = `${dir}/bad`;
    await Deno.mkdir(d);
    await Deno.writeTextFile(quarantinePath(d), `{"tenants": {"x": {"reason": 1}}}`);
    const err = await readQuarantine(d).catch((e) => e);
    expect(err).toBeInstanceOf(WorkyError);
    expect(err.code).toBe("ERR_CONFIG_INVALID");
    expect(err.message).toContain(`${d}/quarantine.json: tenants.x must be`);
    await recordQuarantine(d, "loop", "zombie", new Date(1000));
    expect(Object.keys(await readQuarantine(d))).toEqual(["loop"]);
    const kept = `${quarantinePath(d)}.corrupt-1000`;
    expect(await Deno.readTextFile(kept)).toBe(`{"tenants": {"x": {"reason": 1}}}`);
  });
});
