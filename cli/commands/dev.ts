import { Command } from "@commander-js/extra-typings";
import { runServer } from "../run_server.ts";
import { parsePort } from "../parse.ts";

export const devCommand = new Command("dev")
  .description("serve every tenant of a worky.toml, reloading a tenant when its source changes")
  .option("-c, --config <file>", "the config file", "worky.toml")
  .option("-p, --port <port>", "listen on this port (0 = any free port)", parsePort)
  .option("--hostname <host>", "listen on this address")
  .addHelpText("after", "\nExample:\n  worky dev --config worky.toml --port 8787")
  .action(async (opts) => {
    await runServer({ config: opts.config, port: opts.port, hostname: opts.hostname, watch: true });
  });
