/**
 * `worky dev` and `worky serve`: the same server; dev also watches tenant
 * sources and reloads them, and enables dev-only routes (`/__scheduled`).
 */
import { Command } from "@commander-js/extra-typings";
import { runServer } from "../run_server.ts";
import { parsePort } from "../parse.ts";
import { supervise } from "../supervisor.ts";

function serverCommand(name: string, description: string, watch: boolean, example: string) {
  return new Command(name)
    .description(description)
    .option("-c, --config <file>", "the config file", "worky.toml")
    .option("-p, --port <port>", "listen on this port (0 = any free port)", parsePort)
    .option("--hostname <host>", "listen on this address")
    .option("--no-supervise", "run the server in this process (no restart when it dies)")
    .addHelpText("after", `\nExample:\n  ${example}`)
    .action(async (opts) => {
      if (!opts.supervise) {
        await runServer({ config: opts.config, port: opts.port, hostname: opts.hostname, watch });
        return;
      }
      // cli/supervisor.ts: the server runs in a child process, restarted when it dies
      const command = watch ? "dev" : "serve";
      const { config, port, hostname } = opts;
      Deno.exit(await supervise({ command, config, port, hostname }));
    });
}

export const devCommand = serverCommand(
  "dev",
  "serve every tenant of a worky.toml, reloading a tenant when its source changes",
  true,
  "worky dev --config worky.toml --port 8787",
);

export const serveCommand = serverCommand(
  "serve",
  "serve every tenant of a worky.toml (production: no file watching)",
  false,
  "worky serve --config /etc/worky/worky.toml --port 80",
);
