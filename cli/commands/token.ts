import { Command } from "@commander-js/extra-typings";
import { TokenStore } from "../../control-plane/auth/tokens.ts";
import { openLocal, parseScope, parseTenant, table } from "../_args.ts";
import { note } from "../_progress.ts";

async function withTokens<T>(config: string, fn: (tokens: TokenStore) => Promise<T>): Promise<T> {
  const local = await openLocal(config);
  try {
    return await fn(new TokenStore(local.database));
  } finally {
    local.close();
  }
}

const create = new Command("create")
  .description("create an API token; it is printed once and only its hash is stored")
  .requiredOption("--scope <scope>", "publish | deploy | admin", parseScope)
  .option("--tenant <tenant>", "limit the token to one tenant (and package scope)", parseTenant)
  .option("--description <text>", "a note shown by token list")
  .option("-c, --config <file>", "the config whose database stores tokens", "worky.toml")
  .addHelpText(
    "after",
    "\nExample:\n  worky token create --scope deploy --tenant shop --config worky.toml",
  )
  .action(async (opts) => {
    const { token, info } = await withTokens(
      opts.config,
      (t) => t.create({ scope: opts.scope, tenant: opts.tenant, description: opts.description }),
    );
    note(
      `created token ${info.id} (scope ${info.scope}${
        info.tenant ? `, tenant ${info.tenant}` : ""
      }); it is shown only now`,
    );
    console.log(token);
  });

const list = new Command("list")
  .description("list API tokens (ids, scopes, tenants; never the secrets)")
  .option("-c, --config <file>", "the config whose database stores tokens", "worky.toml")
  .addHelpText("after", "\nExample:\n  worky token list --config worky.toml")
  .action(async (opts) => {
    const rows = await withTokens(opts.config, (t) => t.list());
    console.log(table(
      ["ID", "SCOPE", "TENANT", "CREATED", "REVOKED", "DESCRIPTION"],
      rows.map((r) => [
        r.id,
        r.scope,
        r.tenant ?? "*",
        new Date(r.createdAt).toISOString(),
        r.revokedAt ? new Date(r.revokedAt).toISOString() : "-",
        r.description ?? "",
      ]),
    ));
  });

const revoke = new Command("revoke")
  .description("revoke an API token by id")
  .argument("<id>", "the token id (from token list)")
  .option("-c, --config <file>", "the config whose database stores tokens", "worky.toml")
  .addHelpText("after", "\nExample:\n  worky token revoke 3f9a0c12ab34 --config worky.toml")
  .action(async (id, opts) => {
    await withTokens(opts.config, (t) => t.revoke(id));
    note(`revoked token ${id}`);
  });

/** `worky token create|list|revoke`. */
export const tokenCommand = new Command("token")
  .description("manage API tokens (publish, deploy, admin)")
  .addHelpText("after", "\nExample:\n  worky token create --scope publish --tenant acme")
  .addCommand(create)
  .addCommand(list)
  .addCommand(revoke);
