/**
 * The reaper `sh` a cell runs under (control-plane/cells/cell_reaper.ts): the cell gets the
 * server's pipes, the server finds its pid in the kernel's list of the `sh`'s children, and the
 * cell's exit (a code, or a signal) comes back as if the cell were the server's own child.
 */
import { describe, expect, it } from "vitest";
import {
  reapedCommand,
  reapedPid,
  reapedStatus,
  reaperAvailable,
} from "../../../control-plane/cells/cell_reaper.ts";
import { statFields } from "../../_helpers/sched_policy.ts";
import { until } from "../../_helpers/fixture.ts";

/** Runs `script` (sh) under the reaper with piped stdio. */
function spawnReaped(script: string): Deno.ChildProcess {
  const [cmd, ...args] = reapedCommand(["/bin/sh", "-c", script]);
  return new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
}

describe.skipIf(!reaperAvailable)("the cell reaper", () => {
  it("passes stdin and stdout through and the exit code back; the server is not the parent", async () => {
    const child = spawnReaped('read line; echo "got $line"; exit 3');
    let pid: number | undefined;
    await until(() => (pid = reapedPid(child.pid)) !== undefined);
    expect(Number(statFields(pid!)[1])).toBe(child.pid); // the sh is its parent, not this process
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("init\n"));
    await w.close();
    const out = await child.output();
    expect(new TextDecoder().decode(out.stdout)).toBe("got init\n");
    expect(new TextDecoder().decode(out.stderr)).toBe("");
    expect(reapedStatus({ success: out.success, code: out.code, signal: out.signal })).toEqual({
      success: false,
      code: 3,
      signal: null,
    });
    expect(reapedPid(child.pid)).toBeUndefined(); // gone with its reaper
  });

  it("reports a cell killed by a signal as that signal, without the shell's job report", async () => {
    const child = spawnReaped("echo up; exec sleep 30");
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    expect((await reader.read()).value).toBe("up\n");
    Deno.kill(reapedPid(child.pid)!, "SIGKILL");
    const status = reapedStatus(await child.status);
    expect(status).toEqual({ success: false, code: 137, signal: "SIGKILL" });
    expect(await new Response(child.stderr).text()).toBe(""); // no "Killed"
    // stdout ends with the cell (pipeThrough holds child.stdout's lock until then)
    expect(await reader.read()).toEqual({ done: true, value: undefined });
  });

  it("the cell reads its stdin to the end: EOF when the server closes it, as without the reaper", async () => {
    const child = spawnReaped("wc -c");
    const w = child.stdin.getWriter();
    await w.write(new Uint8Array(70_000)); // more than a pipe holds: the cell must be reading
    await w.close();
    const out = await child.output();
    expect(new TextDecoder().decode(out.stdout).trim()).toBe("70000");
    expect(out.code).toBe(0);
  });
});

describe("reapedStatus", () => {
  it("leaves statuses alone that no signal ended", () => {
    const normal = { success: true, code: 0, signal: null };
    expect(reapedStatus(normal)).toEqual(normal);
    const signalled = { success: false, code: 133, signal: "SIGTRAP" as const };
    expect(reapedStatus(signalled)).toEqual(signalled);
  });
});
