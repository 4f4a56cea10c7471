/**
 * The registry's HTTP API, mounted under `/_worky/registry`:
 *
 * | method | path                                        | what                                   |
 * | ------ | ------------------------------------------- | -------------------------------------- |
 * | GET    | /packages                                   | every package, versions, tags          |
 * | GET    | /packages/:scope/:name                      | one package                            |
 * | GET    | /packages/:scope/:name/resolve?range=^1.2   | `{ name, version }` for a range or tag |
 * | GET    | /packages/:scope/:name/:version/manifest.json | the signed manifest                  |
 * | GET    | /packages/:scope/:name/:version/files/:file | one file's bytes                       |
 * | PUT    | /packages/:scope/:name/:version?tag=latest  | publish (multipart; `publish` token)   |
 * | PUT    | /packages/:scope/:name/tags/:tag            | move a dist-tag (`{ "version" }`)      |
 *
 * A publish body is `multipart/form-data`: a `manifest` field (manifest.json text) and one
 * file part per file, named as in the manifest.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { WorkyError } from "../../runtime/errors.ts";
import { artifactId, MAX_ARTIFACT_BYTES, parseManifest } from "../../runtime/artifact/manifest.ts";
import { requireToken, type TokenVariables } from "../auth/require_token.ts";
import type { TokenStore } from "../auth/tokens.ts";
import { parseRef, type Registry } from "./registry.ts";

/** Room for the manifest and multipart framing on top of the artifact limit. */
const BODY_OVERHEAD = 256 * 1024;

/**
 * The registry routes (a Hono app to mount at `/registry`).
 *
 * @example
 * ```ts ignore
 * admin.route("/registry", registryRoutes({ registry, tokens }));
 * ```
 */
export function registryRoutes(
  opts: { registry: Registry; tokens: TokenStore; maxBytes?: number },
) {
  const { registry, tokens } = opts;
  const maxBytes = opts.maxBytes ?? MAX_ARTIFACT_BYTES;
  const app = new Hono<{ Variables: TokenVariables }>();
  const name = (c: { req: { param(k: string): string } }) =>
    `${c.req.param("scope")}/${c.req.param("name")}`;

  app.get("/packages", async (c) => c.json({ packages: await registry.list() }));
  app.get("/packages/:scope/:name", async (c) => c.json(await registry.package(name(c))));
  app.get("/packages/:scope/:name/resolve", async (c) => {
    const ref = parseRef(`${name(c)}@${c.req.query("range") ?? "latest"}`);
    return c.json({ name: ref.name, version: await registry.resolve(ref) });
  });
  app.get(
    "/packages/:scope/:name/:version/manifest.json",
    async (c) =>
      c.body(await registry.manifestText(name(c), c.req.param("version")), 200, {
        "content-type": "application/json",
      }),
  );
  app.get("/packages/:scope/:name/:version/files/:file", async (c) => {
    const artifact = await registry.artifact(name(c), c.req.param("version"));
    const bytes = artifact.files[c.req.param("file")];
    if (!bytes) {
      throw new WorkyError(
        "ERR_NOT_FOUND",
        `${artifactId(artifact.manifest)} has no file ${c.req.param("file")}`,
      );
    }
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
    });
  });

  app.put(
    "/packages/:scope/:name/tags/:tag",
    requireToken({ tokens, scope: "publish" }),
    async (c) => {
      const body = await c.req.json().catch(() => ({})) as { version?: unknown };
      if (typeof body.version !== "string") {
        throw new WorkyError("ERR_BAD_REQUEST", `body must be {"version": "1.2.3"}`);
      }
      await registry.setTag(name(c), c.req.param("tag"), body.version);
      return c.json(await registry.package(name(c)));
    },
  );

  app.put(
    "/packages/:scope/:name/:version",
    requireToken({ tokens, scope: "publish" }),
    bodyLimit({
      maxSize: maxBytes + BODY_OVERHEAD,
      onError: (c) => {
        throw new WorkyError(
          "ERR_PAYLOAD_TOO_LARGE",
          `the upload of ${name(c)} exceeds the ${maxBytes}-byte artifact limit`,
        );
      },
    }),
    async (c) => {
      const label = `${name(c)}@${c.req.param("version")}`;
      let form: FormData;
      try {
        form = await c.req.formData();
      } catch {
        throw new WorkyError(
          "ERR_BAD_REQUEST",
          `publish ${label}: body must be multipart/form-data with a manifest field and one part per file`,
        );
      }
      const text = form.get("manifest");
      if (typeof text !== "string") {
        throw new WorkyError("ERR_BAD_REQUEST", `publish ${label}: the manifest field is missing`);
      }
      const manifest = parseManifest(text, label);
      if (artifactId(manifest) !== label) {
        throw new WorkyError(
          "ERR_BAD_REQUEST",
          `publish ${label}: the manifest is ${artifactId(manifest)}`,
        );
      }
      if (manifest.size > maxBytes) {
        throw new WorkyError(
          "ERR_PAYLOAD_TOO_LARGE",
          `publish ${label}: ${manifest.size} bytes exceeds the ${maxBytes}-byte artifact limit`,
        );
      }
      const files: Record<string, Uint8Array> = {};
      for (const [key, value] of form.entries()) {
        if (key === "manifest") continue;
        if (typeof value === "string") {
          throw new WorkyError("ERR_BAD_REQUEST", `publish ${label}: part ${key} must be a file`);
        }
        files[key] = new Uint8Array(await value.arrayBuffer());
      }
      const result = await registry.publish(
        { manifest, files },
        c.var.token,
        c.req.query("tag") ?? "latest",
      );
      return c.json(result, 201);
    },
  );
  return app;
}
