/**
 * HTTP client of a control plane's registry (`/_worky/registry`) and admin API
 * (`/_worky/api`), used by the CLI. Server errors come back as the server's WorkyError.
 *
 * @module
 */
import { WorkyError } from "../../runtime/errors.ts";
import { type Artifact, verifyArtifact } from "../../runtime/artifact/artifact.ts";
import { formatManifest, parseManifest } from "../../runtime/artifact/manifest.ts";
import { parseRef } from "./registry.ts";
import type { DeploymentRecord } from "./deployer.ts";

/** A control plane's base URL and an API token. */
export interface Remote {
  /** e.g. `http://127.0.0.1:8787` */
  url: string;
  token?: string;
}

async function call(
  remote: Remote,
  method: string,
  path: string,
  body?: BodyInit,
  json?: boolean,
): Promise<Response> {
  const base = remote.url.replace(/\/+$/, "");
  const headers: Record<string, string> = {};
  if (remote.token) headers.authorization = `Bearer ${remote.token}`;
  if (json) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`${base}/_worky${path}`, { method, headers, body });
  } catch (err) {
    throw new WorkyError("ERR_UNAVAILABLE", `cannot reach ${base}: ${(err as Error).message}`);
  }
  if (res.ok) return res;
  const text = await res.text();
  let payload: { error?: { code?: string; message?: string } } = {};
  try {
    payload = JSON.parse(text);
  } catch { /* not JSON */ }
  if (payload.error?.code && payload.error.message) {
    throw WorkyError.from({
      code: payload.error.code,
      message: `${base}: ${payload.error.message}`,
    });
  }
  throw new WorkyError(
    "ERR_UNAVAILABLE",
    `${base}: ${method} /_worky${path} answered ${res.status}: ${text.slice(0, 200)}`,
  );
}

/** Uploads an artifact; returns what the registry stored. */
export async function publishRemote(
  remote: Remote,
  artifact: Artifact,
  tag = "latest",
): Promise<{ name: string; version: string; digest: string }> {
  const m = artifact.manifest;
  const form = new FormData();
  form.set("manifest", formatManifest(m));
  for (const [name, bytes] of Object.entries(artifact.files)) {
    form.set(name, new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
  }
  const res = await call(
    remote,
    "PUT",
    `/registry/packages/${m.name}/${m.version}?tag=${encodeURIComponent(tag)}`,
    form,
  );
  return await res.json();
}

/** Resolves `name@range` to a version on the registry. */
async function resolveRemote(remote: Remote, refText: string): Promise<string> {
  const ref = parseRef(refText);
  const res = await call(
    remote,
    "GET",
    `/registry/packages/${ref.name}/resolve?range=${encodeURIComponent(ref.range)}`,
  );
  return (await res.json()).version;
}

/**
 * Resolves, downloads and verifies (hashes + signature by a trusted key) an artifact.
 *
 * @example
 * ```ts ignore
 * const artifact = await pullRemote({ url: "http://127.0.0.1:8787" }, "acme/api@^1", ["ed25519:…"]);
 * ```
 */
export async function pullRemote(
  remote: Remote,
  refText: string,
  trustedKeys: readonly string[],
): Promise<Artifact> {
  const ref = parseRef(refText);
  const version = await resolveRemote(remote, refText);
  const base = `/registry/packages/${ref.name}/${version}`;
  const label = `${ref.name}@${version} from ${remote.url}`;
  const manifest = parseManifest(
    await (await call(remote, "GET", `${base}/manifest.json`)).text(),
    label,
  );
  const files: Record<string, Uint8Array> = {};
  for (const file of Object.keys(manifest.files)) {
    files[file] = new Uint8Array(
      await (await call(remote, "GET", `${base}/files/${file}`)).arrayBuffer(),
    );
  }
  const artifact = { manifest, files };
  await verifyArtifact(artifact, { trustedKeys, label });
  return artifact;
}

/** Deploys `ref` to `tenant` on a remote control plane. */
export async function deployRemote(
  remote: Remote,
  tenant: string,
  ref: string,
): Promise<DeploymentRecord> {
  const res = await call(
    remote,
    "POST",
    `/api/tenants/${encodeURIComponent(tenant)}/deploy`,
    JSON.stringify({ ref }),
    true,
  );
  return await res.json();
}

/** Rolls `tenant` back on a remote control plane. */
export async function rollbackRemote(remote: Remote, tenant: string): Promise<DeploymentRecord> {
  return await (await call(remote, "POST", `/api/tenants/${encodeURIComponent(tenant)}/rollback`))
    .json();
}

/** Deployment history of `tenant` on a remote control plane. */
export async function historyRemote(remote: Remote, tenant: string): Promise<DeploymentRecord[]> {
  return (await (await call(
    remote,
    "GET",
    `/api/tenants/${encodeURIComponent(tenant)}/deployments`,
  )).json()).deployments;
}
