/**
 * Powers that reach the whole process from one worker: Deno.chdir (the
 * host's cwd), signal handlers (the host's SIGINT/SIGTERM), process.kill of
 * the own pid (the host itself), node:worker_threads threads, and node's handle classes opening
 * the process's file descriptors by number (closing the host's made Deno panic) or its terminal,
 * node's `fs` on the process's stdio descriptors (a raw line on the operator's log), and
 * `Deno.permissions.request` (a prompt on the operator's terminal).
 */
import { afterAll, beforeAll, expect } from "vitest";
import { ask, evilTenant } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

const dir = Deno.makeTempDirSync({ prefix: "worky-chdir-" });
const f = evilTenant(
  `
  const how = new URL(request.url).searchParams.get("how");
  const p = (await import("node:process")).default;
  if (how === "chdir") { Deno.chdir(${JSON.stringify(dir)}); return Deno.cwd(); }
  if (how === "signal") { Deno.addSignalListener("SIGINT", () => {}); return "listening"; }
  if (how === "process.on") { p.on("SIGTERM", () => {}); return "listening"; }
  if (how === "kill") { p.kill(p.pid, "SIGKILL"); return "killed"; }
  if (how === "restore-kill") { delete p.kill; return typeof p.kill; }
  if (how.startsWith("open-")) { // wrap the process's descriptors by number, then close them
    const [, mod, cls] = how.split("-");
    const b = p.binding(mod).default ?? p.binding(mod);
    let opened = 0;
    for (let fd = 0; fd < 64; fd++) {
      const h = new b[cls](0);
      if (h.open(fd) === 0) { opened++; h.close(); }
    }
    return opened;
  }
  if (how === "tty") { // read the process's terminal (stdin here is no terminal: it reads EOF)
    const tty = await import("node:tty");
    const rs = new tty.ReadStream(0);
    return await new Promise((resolve, reject) => {
      rs.on("data", (d) => resolve("read " + d));
      rs.on("end", () => resolve("reading"));
      rs.on("error", reject);
      setTimeout(() => resolve("reading"), 300);
    });
  }
  if (how === "tty-raw") { // the process's terminal in raw mode, through the bare handle
    const b = p.binding("tty_wrap").default ?? p.binding("tty_wrap");
    return new b.TTY(0, {}).setRawMode(true);
  }
  if (how === "tty-write") { // write the process's terminal through the bare handle
    const b = p.binding("tty_wrap").default ?? p.binding("tty_wrap");
    const err = new b.TTY(0, {}).writeUtf8String({}, "to the operator's terminal\\n");
    if (err !== 0) throw new Error("write refused: " + (err === -13 ? "EACCES" : err));
    return "written";
  }
  if (how.startsWith("fd-")) { // node's fs on the process's stdio descriptors
    const fs = await import("node:fs");
    const fd = Number(how.slice(3));
    if (fd === 0) return "read " + fs.readSync(0, new Uint8Array(8));
    fs.writeSync(fd, "forged line on the host's stdio\\n");
    return "written";
  }
  if (how === "permission-request") { // would ask the operator's terminal, where prompts are on
    const { state } = await Deno.permissions.request({ name: "read", path: "/etc/hostname" });
    const sync = Object.getPrototypeOf(Deno.permissions).requestSync.call(Deno.permissions, { name: "env" });
    return state + " " + sync.state;
  }
  if (how === "thread") {
    const { EventEmitter } = await import("node:events");
    const wt = await import("node:worker_threads");
    try { Object.setPrototypeOf(wt.Worker, EventEmitter); } catch {}
    new wt.Worker("1", { eval: true });
    return "spawned";
  }
`,
  `[tenants.evil.permissions]\nread = [${JSON.stringify(dir)}]\n`,
  { beforeAll, afterAll },
);

for (
  const how of [
    "chdir",
    "signal",
    "process.on",
    "kill",
    "restore-kill",
    "thread",
    "tty",
    "tty-raw",
    "tty-write",
    "permission-request",
    "fd-0",
    "fd-1",
    "fd-2",
    "open-tcp_wrap-TCP",
    "open-pipe_wrap-Pipe",
    "open-udp_wrap-UDP",
  ]
) {
  attempt(`process-wide power: ${how}`, async () => {
    const cwd = Deno.cwd();
    const { status, body } = await ask(f(), "evil", `/?how=${how}`);
    expect(status).toBe(200); // the host answered: it is alive
    expect(body.ok).toBe(false);
    expect(String(body.message)).toMatch(
      /not available to Worky tenants|Cannot delete|EACCES|bad file descriptor/i,
    );
    expect(Deno.cwd()).toBe(cwd);
  });
}
