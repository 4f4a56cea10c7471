/**
 * Run by `zombie_threads.test.ts` in its own process (a zombie thread it leaves behind would keep
 * a core of the vitest fork busy): starts real workers through `trackWorkerThread`, makes one spin,
 * terminates them and prints one JSON line with what `ZombieThreads` found, then exits.
 */
import { Worker as NodeWorker } from "node:worker_threads";
import {
  trackWorkerThread,
  workerThread,
  ZombieThreads,
} from "../../../runtime/memory/zombie_threads.ts";
import { threadPolicy } from "../../_helpers/sched_policy.ts";

const src = URL.createObjectURL(
  new Blob([
    `self.onmessage = (e) => {
       if (e.data === "spin") { postMessage("spinning"); while (true) {} }
       if (e.data === "await") { postMessage("spinning"); (async () => { for (;;) await 0; })(); }
       else postMessage("pong");
     };`,
  ], { type: "text/javascript" }),
);
const spawn = () => trackWorkerThread(() => new Worker(src, { type: "module" }));
const ask = (w: Worker, what: string) =>
  new Promise((resolve) => {
    w.onmessage = resolve;
    w.postMessage(what);
  });

const keepAlive = setInterval(() => {}, 1000); // the watcher's timers are unref'd
const idle = spawn();
const spinner = spawn();
// node:worker_threads share Deno's worker counter: the next Web Worker skips a number
const node = new NodeWorker("setTimeout(() => {}, 10)", { eval: true });
const awaiter = spawn();
for (const w of [idle, spinner, awaiter]) await ask(w, "ping");
await ask(spinner, "spin");
await ask(awaiter, "await");

const zombies = new ZombieThreads({ settleMs: 500, windowMs: 1000 });
for (const w of [idle, spinner, awaiter]) w.terminate();
await node.terminate();
const [a, b, c] = await Promise.all([
  zombies.watch(idle, "idle", "test"),
  zombies.watch(spinner, "spin", "test"),
  zombies.watch(awaiter, "await", "test"),
]);
clearInterval(keepAlive);
console.log(JSON.stringify({
  policies: [idle, spinner, awaiter].map((w) => threadPolicy(workerThread(w)?.tid ?? -1)),
  demoted: zombies.demoted,
  threads: [idle, spinner, awaiter].map((w) => workerThread(w)?.name ?? null),
  verdicts: [a ?? null, b ?? null, c ?? null],
  live: zombies.live().map((z) => z.tenant),
}));
Deno.exit(0);
