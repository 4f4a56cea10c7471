/**
 * Dev hot reload: watches the folders of every tenant's bundle inputs and
 * redeploys a tenant when one of its files changes. The swap is atomic
 * (DeploymentManager.swap): requests in flight finish on the old code, new
 * ones get the new code. A broken edit logs its error and keeps the old
 * version serving.
 */
import type { DeploymentManager } from "../deployments.ts";
import type { Logger } from "../../runtime/logger.ts";

const DEBOUNCE_MS = 50;

export class SourceWatcher {
  #watchers: Deno.FsWatcher[] = [];
  #dirs = new Set<string>();
  #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #stopped = false;

  constructor(private readonly deployments: DeploymentManager, private readonly logger: Logger) {}

  /** Watches every folder holding a tenant input not yet watched. */
  start(): void {
    for (const slot of this.deployments.list()) {
      for (const file of slot.inputs) {
        if (file.includes("/node_modules/")) continue;
        const dir = file.slice(0, file.lastIndexOf("/"));
        if (this.#dirs.has(dir)) continue;
        this.#dirs.add(dir);
        this.#watch(dir);
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const w of this.#watchers) {
      try {
        w.close();
      } catch { /* already closed */ }
    }
    for (const t of this.#timers.values()) clearTimeout(t);
  }

  async #watch(dir: string) {
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs(dir, { recursive: false });
    } catch (err) {
      this.logger.log({ level: "warn", msg: `cannot watch ${dir}: ${err}` });
      return;
    }
    this.#watchers.push(watcher);
    try {
      for await (const event of watcher) {
        if (event.kind === "access") continue;
        for (const path of event.paths) this.#changed(path);
      }
    } catch { /* closed */ }
  }

  #changed(path: string) {
    for (const slot of this.deployments.list()) {
      if (!slot.inputs.includes(path)) continue;
      const name = slot.config.name;
      clearTimeout(this.#timers.get(name));
      this.#timers.set(name, setTimeout(() => this.#reload(name, path), DEBOUNCE_MS));
    }
  }

  async #reload(name: string, path: string) {
    this.#timers.delete(name);
    if (this.#stopped) return;
    const started = performance.now();
    try {
      const d = await this.deployments.redeploy(name);
      this.logger.log({
        level: "info",
        msg: `reloaded after change to ${path} (${(performance.now() - started).toFixed(0)} ms)`,
        tenant: name,
        version: d.version,
      });
      this.start(); // new files may have joined the bundle
    } catch (err) {
      this.logger.log({
        level: "error",
        msg: `reload failed, still serving the previous version: ${(err as Error).message}`,
        tenant: name,
      });
    }
  }
}
