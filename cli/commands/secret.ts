/**
 * `worky secret put|list|delete`: tenant secrets in the local database,
 * encrypted at rest. A value is read from stdin (never argv, which other users
 * can see in `ps`); it reaches the tenant's `env` when the tenant next deploys
 * (server start or redeploy).
 */
import { Command } from "@commander-js/extra-typings";
import { loadConfig } from "../../control-plane/config/load_config.ts";
import { openDatabase } from "../../control-plane/storage/database.ts";
import { openSecretStore } from "../../control-plane/secrets/open_secret_store.ts";
import type { SecretStore } from "../../control-plane/secrets/secret_store.ts";
import { WorkyError } from "../../runtime/errors.ts";

async function withStore<T>(
  configPath: string,
  tenant: string,
  run: (store: SecretStore) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(configPath);
  if (!config.tenants.some((t) => t.name === tenant)) {
    throw new WorkyError(
      "ERR_NOT_FOUND",
      `no tenant "${tenant}" in ${config.path} (tenants: ${
        config.tenants.map((t) => t.name).join(", ") || "none"
      })`,
    );
  }
  const db = await openDatabase(config.server.dbUrl);
  try {
    return await run(await openSecretStore(db, config.server.dataDir));
  } finally {
    db.close();
  }
}

/** The whole of stdin, without one trailing newline. */
async function readValue(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    console.error("enter the secret value, then Ctrl-D (it is not echoed back anywhere else):");
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text;
}

const configOption = ["-c, --config <file>", "the config file", "worky.toml"] as const;

export const secretCommand = new Command("secret")
  .description("tenant secrets: encrypted at rest, visible only on that tenant's env")
  .addCommand(
    new Command("put")
      .description("store a secret; the value is read from stdin")
      .argument("<tenant>", "tenant name")
      .argument("<name>", "name on env, e.g. STRIPE_KEY")
      .option(...configOption)
      .addHelpText("after", '\nExample:\n  printf %s "$KEY" | worky secret put shop STRIPE_KEY')
      .action(async (tenant, name, opts) => {
        const value = await readValue();
        await withStore(opts.config, tenant, (s) => s.put(tenant, name, value));
        console.log(`secret ${name} stored for ${tenant} (applies when ${tenant} next deploys)`);
      }),
  )
  .addCommand(
    new Command("list")
      .description("names of a tenant's secrets (never values)")
      .argument("<tenant>", "tenant name")
      .option(...configOption)
      .action(async (tenant, opts) => {
        for (const n of await withStore(opts.config, tenant, (s) => s.list(tenant))) console.log(n);
      }),
  )
  .addCommand(
    new Command("delete")
      .description("delete a secret")
      .argument("<tenant>", "tenant name")
      .argument("<name>", "secret name")
      .option(...configOption)
      .action(async (tenant, name, opts) => {
        const gone = await withStore(opts.config, tenant, (s) => s.delete(tenant, name));
        if (!gone) {
          throw new WorkyError("ERR_NOT_FOUND", `tenant "${tenant}" has no secret ${name}`);
        }
        console.log(`secret ${name} deleted for ${tenant}`);
      }),
  );
