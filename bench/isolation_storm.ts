/**
 * The bad traffic of `bench/isolation.ts`, in a process of its own, so the process that times the
 * good requests does nothing else (a generator sharing its event loop would add its own delays to
 * the good requests' latency). Usage:
 * `deno run -A bench/isolation_storm.ts <url> <paced|flood> <rps> <tenant,…>`; it storms until its
 * stdin closes, then prints `{"bad": <requests sent>}`.
 */
const [url, kind, rpsArg, names] = Deno.args;
const RPS = Number(rpsArg);
const MAX_OUTSTANDING = 16;
let storming = true;
let bad = 0;

const hit = async (name: string) => {
  try {
    const res = await fetch(`${url}/${name}/`);
    await res.body?.cancel();
  } catch { /* expected */ }
  bad++;
};

const storm = Promise.all(
  names.split(",").map(async (name) => {
    if (kind === "flood") {
      while (storming) await hit(name);
      return;
    }
    // paced: a request every 1000/RPS ms whether or not the last one answered
    const outstanding = new Set<Promise<void>>();
    while (storming) {
      if (outstanding.size < MAX_OUTSTANDING) {
        const p: Promise<void> = hit(name).finally(() => outstanding.delete(p));
        outstanding.add(p);
      }
      await new Promise((r) => setTimeout(r, 1000 / RPS));
    }
    await Promise.all(outstanding);
  }),
);

for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
storming = false;
await storm;
console.log(JSON.stringify({ bad }));
Deno.exit(0);
