/**
 * What `top`, `ps` or a metrics exporter does on a production host, for `bench/isolation.ts`:
 * every `<interval ms>` it reads the `stat` of every thread of every process in `/proc`. A Linux
 * host reaping a dead child drops that child's cached `/proc` entries and can wait on them
 * (session 9: the server's main thread stalled 2.9–4.4 s reaping cells while such a reader
 * ran; `control-plane/cells/cell_reaper.ts`), so the storm is measured with one running.
 * Usage: `deno run -A bench/proc_reader.ts <interval ms>`; runs until killed. No-op off Linux.
 */
const interval = Number(Deno.args[0] ?? 2000);

function readAll() {
  try {
    for (const p of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(p.name)) continue;
      try {
        for (const t of Deno.readDirSync(`/proc/${p.name}/task`)) {
          Deno.readTextFileSync(`/proc/${p.name}/task/${t.name}/stat`);
        }
      } catch { /* it ended meanwhile */ }
    }
  } catch { /* no /proc */ }
}

setInterval(readAll, interval);
