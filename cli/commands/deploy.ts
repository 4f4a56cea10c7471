import { Command } from "@commander-js/extra-typings";
import {
  deployRemote,
  historyRemote,
  rollbackRemote,
} from "../../control-plane/registry/client.ts";
import { createRegistryPlane } from "../../control-plane/registry/plane.ts";
import type { DeploymentRecord } from "../../control-plane/registry/deployer.ts";
import { MemoryLogger } from "../../runtime/logger.ts";
import { WorkyError } from "../../runtime/errors.ts";
import { openLocal, parseRefArg, parseTenant, parseUrl, requireTokenArg, table } from "../_args.ts";
import { note, step } from "../_progress.ts";

interface Target {
  config: string;
  remote?: string;
  token?: string;
}

/** Runs `remote` against `--remote`, else `local` against the config's database. */
async function withTarget<T>(
  opts: Target,
  remote: (r: { url: string; token: string }) => Promise<T>,
  local: (plane: ReturnType<typeof createRegistryPlane>) => Promise<T>,
): Promise<T> {
  if (opts.remote) {
    return await remote({ url: opts.remote, token: requireTokenArg(opts.token, "--remote") });
  }
  if (opts.token) throw new WorkyError("ERR_BAD_REQUEST", "--token is for --remote only");
  const { config, database, close } = await openLocal(opts.config);
  try {
    return await local(createRegistryPlane({ config, database, logger: new MemoryLogger() }));
  } finally {
    close();
  }
}

function describe(r: DeploymentRecord, remote: boolean): string {
  return `${r.tenant}: ${r.action} ${r.ref}${r.previous ? ` (was ${r.previous})` : ""}` +
    (remote
      ? ""
      : "; recorded in the database: a running server switches at its next start (use --remote to switch it now)");
}

/** A command that works on the config's database, or on a running control plane (`--remote`). */
function targetCommand(name: string, description: string, example: string) {
  return new Command(name)
    .description(description)
    .addHelpText("after", `\nExample:\n  ${example}`)
    .option("-c, --config <file>", "the config (local mode: its database)", "worky.toml")
    .option("--remote <url>", "a running control plane's admin API instead", parseUrl)
    .option("--token <token>", "API token with scope deploy (or WORKY_TOKEN), for --remote");
}

/** `worky deploy`. */
export const deployCommand = targetCommand(
  "deploy",
  "switch a tenant to a registry artifact version, atomically",
  "worky deploy shop acme/shop@1.2.0 --remote http://127.0.0.1:8787 --token $WORKY_TOKEN",
)
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .argument("<ref>", "scope/name@version (or a range / dist-tag)", parseRefArg)
  .action(async (tenant, ref, opts) => {
    const record = await step(
      `deploying ${ref} to ${tenant}`,
      () =>
        withTarget(
          opts,
          (r) => deployRemote(r, tenant, ref),
          (p) => p.deployer.deploy(tenant, ref, "local"),
        ),
    );
    note(describe(record, !!opts.remote));
    console.log(record.ref);
  });

/** `worky rollback`. */
export const rollbackCommand = targetCommand(
  "rollback",
  "return a tenant to the version before its current one",
  "worky rollback shop --remote http://127.0.0.1:8787 --token $WORKY_TOKEN",
)
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .action(async (tenant, opts) => {
    const record = await withTarget(
      opts,
      (r) => rollbackRemote(r, tenant),
      (p) => p.deployer.rollback(tenant, "local"),
    );
    note(describe(record, !!opts.remote));
    console.log(record.ref);
  });

/** `worky deployments`. */
export const deploymentsCommand = targetCommand(
  "deployments",
  "list a tenant's deploys and rollbacks, newest first",
  "worky deployments shop --config worky.toml",
)
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .action(async (tenant, opts) => {
    const rows = await withTarget(
      opts,
      (r) => historyRemote(r, tenant),
      (p) => p.deployer.history(tenant),
    );
    if (!rows.length) {
      note(`tenant ${tenant} has no registry deployments (it runs its worky.toml module)`);
      return;
    }
    console.log(table(
      ["", "ID", "WHEN", "ACTION", "REF", "PREVIOUS", "BY"],
      rows.map((r) => [
        r.active ? "*" : "",
        String(r.id),
        new Date(r.createdAt).toISOString(),
        r.action,
        r.ref,
        r.previous ?? "-",
        r.actor ?? "-",
      ]),
    ));
  });
