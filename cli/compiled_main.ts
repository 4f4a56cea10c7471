/**
 * The entrypoint `worky compile` embeds: serves the tenants of the config it was compiled
 * with, from the pre-built, signed artifacts embedded beside it. Nothing here reads the
 * source tree; state (libSQL, pulled artifacts) goes to `--data-dir` (default `./.worky`).
 *
 * The generated entry calls {@linkcode runCompiled} with the URL of its `embedded/` folder:
 * `config.json` (worky.toml as JSON, tenants' modules rewritten to `registry:name@version`,
 * the compile key trusted) and `artifacts/<scope>/<name>/<version>/`.
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseConfigObject } from "../control-plane/config/load_config.ts";
import { startServer } from "../control-plane/server.ts";
import { WorkyError } from "../runtime/errors.ts";

const USAGE = `usage: worky-compiled [--port N] [--hostname H] [--data-dir DIR]

Serves the tenants compiled into this binary.

Example:
  ./dist/worky --port 8080 --data-dir /var/lib/worky`;

/**
 * Starts the embedded server; returns when it is listening (it stops on SIGINT/SIGTERM).
 *
 * @example
 * ```ts ignore
 * await runCompiled(new URL("./embedded/", import.meta.url), Deno.args);
 * ```
 */
export async function runCompiled(embedded: URL, args: string[]): Promise<number> {
  let values: { port?: string; hostname?: string; "data-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: "string", short: "p" },
        hostname: { type: "string" },
        "data-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    console.error(`worky: ${(err as Error).message} (run with --help for usage)`);
    return 1;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!/^\d+$/.test(values.port!) || port > 65535)) {
    console.error(`worky: --port "${values.port}" is not a port (expected 0–65535)`);
    return 1;
  }
  const dir = fileURLToPath(embedded);
  try {
    const doc = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    if (values["data-dir"]) doc.server = { ...doc.server, data_dir: resolve(values["data-dir"]) };
    const config = parseConfigObject(doc, { path: "<compiled config>", dir: Deno.cwd() });
    const server = await startServer({
      config,
      port,
      hostname: values.hostname,
      allowUnsigned: false,
      artifactDirs: [`${dir}/artifacts`],
    });
    const stop = () => server.close().then(() => Deno.exit(0));
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    console.error(`worky: serving ${config.tenants.length} tenant(s) on ${server.url}`);
    for (const t of config.tenants) {
      console.error(`  ${t.name.padEnd(16)} ${t.module}  ${t.routes.join("  ")}`);
    }
    return 0;
  } catch (err) {
    const e = WorkyError.from(err);
    console.error(`worky: ${e.code}: ${e.message}`);
    return e.isUserError ? 1 : 2;
  }
}
