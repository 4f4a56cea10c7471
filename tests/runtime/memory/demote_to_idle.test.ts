/**
 * `demoteToIdle` (runtime/memory/cpu_priority.ts): SCHED_IDLE for one thread or every thread of a
 * process, through libc where this process may use FFI (no subprocess on the thread that serves
 * every tenant), else through `chrt`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { canIdle, demoteToIdle } from "../../../runtime/memory/cpu_priority.ts";
import { policiesOf, SCHED_IDLE, threadPolicy } from "../../_helpers/sched_policy.ts";

const MODULE = new URL("../../../runtime/memory/cpu_priority.ts", import.meta.url).pathname;

const targets: Deno.ChildProcess[] = [];
afterEach(async () => {
  for (const t of targets.splice(0)) {
    t.kill("SIGKILL");
    await t.status;
  }
});

/** A Deno process idling with its V8 threads up: several threads to demote. */
async function target(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "console.log('up'); setTimeout(() => {}, 30000)"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  targets.push(child);
  const reader = child.stdout.getReader();
  await reader.read(); // its threads exist
  reader.releaseLock();
  return child.pid;
}

/** `demoteToIdle(pid, all)` in a `deno run` with only `flags`; what it resolved to. */
async function demoteIn(flags: string[], pid: number, all: boolean): Promise<boolean> {
  const dir = await Deno.makeTempDir({ prefix: "worky-demote-" });
  try {
    await Deno.writeTextFile(
      `${dir}/demote.ts`,
      `import { demoteToIdle } from ${JSON.stringify(MODULE)};\n` +
        `console.log(await demoteToIdle(${pid}, ${all}));`,
    );
    const out = await new Deno.Command(Deno.execPath(), { // not `deno eval`: it grants everything
      args: [
        "run",
        "--no-prompt",
        `--allow-read=${dir},${MODULE},/usr/bin/chrt,/bin/chrt`,
        ...flags,
        `${dir}/demote.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!text) throw new Error(new TextDecoder().decode(out.stderr));
    return JSON.parse(text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

describe.skipIf(!canIdle)("demoteToIdle", () => {
  it("with FFI and no permission to run a subprocess, demotes a thread through libc", async () => {
    const pid = await target();
    expect(await demoteIn(["--allow-ffi"], pid, false)).toBe(true);
    expect(threadPolicy(pid, pid)).toBe(SCHED_IDLE); // its main thread
    expect(policiesOf(pid).filter((p) => p === SCHED_IDLE)).toHaveLength(1); // only that one
  });

  it("with FFI (this process), demotes every thread of a process", async () => {
    // reading another process's /proc/<pid>/task takes every permission in Deno, so the server's
    // case (-A, with FFI) is this process's; without FFI this would test chrt a second time
    expect(Deno.permissions.querySync({ name: "ffi" }).state).toBe("granted");
    const pid = await target();
    expect(policiesOf(pid).length).toBeGreaterThan(1);
    expect(await demoteToIdle(pid, true)).toBe(true);
    expect(policiesOf(pid).every((p) => p === SCHED_IDLE)).toBe(true);
  });

  it("without FFI it runs chrt, with the same result", async () => {
    const pid = await target();
    expect(await demoteIn(["--allow-run"], pid, true)).toBe(true);
    expect(policiesOf(pid).every((p) => p === SCHED_IDLE)).toBe(true);
  });

  it("resolves false for a process that is gone", async () => {
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    expect(await demoteToIdle(gone.pid, true)).toBe(false);
    expect(await demoteToIdle(gone.pid)).toBe(false);
  });
});
