/**
 * The bad traffic of `bench/isolation.ts`, in a process of its own, so the process that times the
 * good requests does nothing else (a generator sharing its event loop would add its own delays to
 * the good requests' latency). Usage:
 * `deno run -A bench/isolation_storm.ts <url> <paced|flood> <rps> <tenant,…>`; it reads lines on
 * stdin: `storm` starts the bad traffic, `calm` pauses it; at EOF it waits for its requests and
 * prints `{"bad": <requests sent>}`.
 */
const [url, kind, rpsArg, names] = Deno.args;
const RPS = Number(rpsArg);
const MAX_OUTSTANDING = 16;
let storming = false;
let open = true;
let bad = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const hit = async (name: string) => {
  try {
    const res = await fetch(`${url}/${name}/`);
    await res.body?.cancel();
  } catch { /* expected */ }
  bad++;
};

const storm = Promise.all(
  names.split(",").map(async (name) => {
    const outstanding = new Set<Promise<void>>();
    while (open) {
      if (!storming) {
        await sleep(5);
        continue;
      }
      if (kind === "flood") {
        await hit(name);
        continue;
      }
      // paced: a request every 1000/RPS ms whether or not the last one answered
      if (outstanding.size < MAX_OUTSTANDING) {
        const p: Promise<void> = hit(name).finally(() => outstanding.delete(p));
        outstanding.add(p);
      }
      await sleep(1000 / RPS);
    }
    await Promise.all(outstanding);
  }),
);

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  const lines = pending.split("\n");
  pending = lines.pop()!;
  for (const line of lines) storming = line.trim() === "storm"; // anything else calms
}
storming = false;
open = false;
await storm;
console.log(JSON.stringify({ bad }));
Deno.exit(0);
