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

/** `worky deploy`. */
export const deployCommand = new Command("deploy")
  .description("switch a tenant to a registry artifact version, atomically")
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .argument("<ref>", "scope/name@version (or a range / dist-tag)", parseRefArg)
  .addHelpText(
    "after",
    "\nExample:\n  worky deploy shop acme/shop@1.2.0 --remote http://127.0.0.1:8787 --token $WORKY_TOKEN",
  )
  .option("-c, --config <file>", "the config (local mode: its database)", "worky.toml")
  .option("--remote <url>", "a running control plane's admin API instead", parseUrl)
  .option("--token <token>", "API token with scope deploy (or WORKY_TOKEN), for --remote")
  .action(async (tenant, ref, opts) => {
    const o: Target = opts;
    const record = await step(
      `deploying ${ref} to ${tenant}`,
      () =>
        withTarget(
          o,
          (r) => deployRemote(r, tenant, ref),
          (p) => p.deployer.deploy(tenant, ref, "local"),
        ),
    );
    note(describe(record, !!o.remote));
    console.log(record.ref);
  });

/** `worky rollback`. */
export const rollbackCommand = new Command("rollback")
  .description("return a tenant to the version before its current one")
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .addHelpText(
    "after",
    "\nExample:\n  worky rollback shop --remote http://127.0.0.1:8787 --token $WORKY_TOKEN",
  )
  .option("-c, --config <file>", "the config (local mode: its database)", "worky.toml")
  .option("--remote <url>", "a running control plane's admin API instead", parseUrl)
  .option("--token <token>", "API token with scope deploy (or WORKY_TOKEN), for --remote")
  .action(async (tenant, opts) => {
    const o: Target = opts;
    const record = await withTarget(
      o,
      (r) => rollbackRemote(r, tenant),
      (p) => p.deployer.rollback(tenant, "local"),
    );
    note(describe(record, !!o.remote));
    console.log(record.ref);
  });

/** `worky deployments`. */
export const deploymentsCommand = new Command("deployments")
  .description("list a tenant's deploys and rollbacks, newest first")
  .argument("<tenant>", "tenant name from worky.toml", parseTenant)
  .addHelpText("after", "\nExample:\n  worky deployments shop --config worky.toml")
  .option("-c, --config <file>", "the config (local mode: its database)", "worky.toml")
  .option("--remote <url>", "a running control plane's admin API instead", parseUrl)
  .option("--token <token>", "API token with scope deploy (or WORKY_TOKEN), for --remote")
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
