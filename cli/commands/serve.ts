import { Command } from "@commander-js/extra-typings";
import { runServer } from "../run_server.ts";
import { parsePort } from "../parse.ts";

export const serveCommand = new Command("serve")
  .description("serve every tenant of a worky.toml (production: no file watching)")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .option("-p, --port <port>", "listen on this port (0 = any free port)", parsePort)
  .option("--hostname <host>", "listen on this address")
  .addHelpText("after", "\nExample:\n  worky serve --config /etc/worky/worky.toml --port 80")
  .action(async (opts) => {
    await runServer({
      config: opts.config,
      port: opts.port,
      hostname: opts.hostname,
      watch: false,
    });
  });
