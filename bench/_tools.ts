/** Helpers for the benchmark: child processes, wrk, RSS, percentiles. */

interface Child {
  pid: number;
  /** Sends `signal` (default SIGKILL) and waits for the exit; SIGKILL after 15 s. */
  stop(signal?: Deno.Signal): Promise<void>;
}

export function startProcess(cmd: string[]): Child {
  const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "null" })
    .spawn();
  return {
    pid: child.pid,
    async stop(signal: Deno.Signal = "SIGKILL") {
      const kill = (s: Deno.Signal) => {
        try {
          child.kill(s);
        } catch { /* gone */ }
      };
      kill(signal);
      const timer = setTimeout(() => kill("SIGKILL"), 15_000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** wrk must exist; installs it from Debian's packages when running as root. */
export async function ensureWrk(): Promise<void> {
  const has = async () => {
    try {
      return (await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" })
        .output()) !== null;
    } catch {
      return false;
    }
  };
  if (await has()) return;
  console.error("bench: wrk not found; installing it with apt-get (Debian package 'wrk')…");
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", { args, stdout: "null", stderr: "inherit" }).output();
  try {
    await apt(["update", "-qq"]);
    await apt(["install", "-y", "-qq", "wrk"]);
  } catch { /* reported below */ }
  if (!await has()) {
    throw new Error("bench: wrk is required; install it with 'apt-get install wrk'");
  }
}

/** Runs wrk -t1 -c32 against `url` for `seconds`; returns requests/s. */
export async function wrk(url: string, seconds: number): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c32", `-d${seconds}s`, url],
    stdout: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const m = text.match(/Requests\/sec:\s+([\d.]+)/);
  const non2xx = text.match(/Non-2xx or 3xx responses:\s+(\d+)/);
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses from ${url}`);
  if (!m) throw new Error(`cannot read wrk output:\n${text}`);
  return Number(m[1]);
}

/** Resident set size of a process, bytes (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = status.match(/VmRSS:\s+(\d+) kB/);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
