/**
 * Artifacts: reproducible builds, and every way to tamper with one is refused with an error
 * naming the artifact. Real esbuild, real WebCrypto Ed25519.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { writeTree } from "../../_helpers/fixture.ts";
import { buildArtifact } from "../../../runtime/artifact/build.ts";
import {
  type Artifact,
  readArtifactDir,
  verifyArtifact,
  writeArtifactDir,
} from "../../../runtime/artifact/artifact.ts";
import { formatManifest, parseManifest } from "../../../runtime/artifact/manifest.ts";
import {
  generateKeyFile,
  importKeyFile,
  type KeyFile,
  type SigningKey,
  signManifest,
} from "../../../runtime/artifact/signing.ts";
import { stopBundler } from "../../../runtime/bundler.ts";
import { WorkyError } from "../../../runtime/errors.ts";

let dir: string;
let keyFile: KeyFile;
let key: SigningKey;
let other: SigningKey;
let artifact: Artifact;

const PROJECT = {
  "worky.json": JSON.stringify({
    name: "acme/api",
    version: "1.2.0",
    permissions: { net: ["api.example.com:443"] },
    kv: ["CACHE"],
    crons: ["*/5 * * * *"],
  }),
  "mod.ts":
    `import { greet } from "./lib.ts";\nimport data from "./data.json" with { type: "json" };\n` +
    `export default { fetch: () => new Response(greet(data.who)) };\n`,
  "lib.ts": `export const greet = (who: string): string => "hello " + who;\n`,
  "data.json": `{ "who": "world" }\n`,
};

beforeAll(async () => {
  dir = await writeTree(PROJECT);
  keyFile = await generateKeyFile();
  key = await importKeyFile(JSON.stringify(keyFile), "k");
  other = await importKeyFile(JSON.stringify(await generateKeyFile()), "other");
  artifact = (await buildArtifact(dir, { key })).artifact;
});
afterAll(async () => {
  await stopBundler();
  await Deno.remove(dir, { recursive: true });
});

/** A deep copy, so each case tampers with its own. */
function copy(a: Artifact): Artifact {
  return {
    manifest: structuredClone(a.manifest),
    files: Object.fromEntries(Object.entries(a.files).map(([k, v]) => [k, v.slice()])),
  };
}

async function refusal(a: Artifact, trustedKeys = [keyFile.publicKey]): Promise<WorkyError> {
  const err = await verifyArtifact(a, { trustedKeys }).then(() => undefined, (e) => e);
  expect(err).toBeInstanceOf(WorkyError);
  expect(err.code).toBe("ERR_BUNDLE_TAMPERED");
  expect(err.message).toContain("acme/api@1.2.0");
  return err;
}

describe("build", () => {
  test("the manifest says what the artifact is, holds and asks for", async () => {
    const m = artifact.manifest;
    expect(m).toMatchObject({
      name: "acme/api",
      version: "1.2.0",
      entry: "module.js",
      permissions: { net: ["api.example.com:443"] },
      bindings: { kv: ["CACHE"] },
      crons: ["*/5 * * * *"],
    });
    expect(Object.keys(m.files).sort()).toEqual(["module.js", "module.js.map"]);
    expect(m.size).toBe(
      artifact.files["module.js"].length + artifact.files["module.js.map"].length,
    );
    expect(m.signature?.key).toBe(keyFile.publicKey);
    const code = new TextDecoder().decode(artifact.files["module.js"]);
    expect(code).toContain("hello ");
    expect(code).toMatch(/\/\/# sourceMappingURL=module\.js\.map\n$/);
    const map = JSON.parse(new TextDecoder().decode(artifact.files["module.js.map"]));
    expect(map.sources.sort()).toEqual(["data.json", "lib.ts", "mod.ts"]); // relative: reproducible
    await verifyArtifact(artifact, { trustedKeys: [keyFile.publicKey] });
  });

  test("is reproducible: same sources → same bytes and hashes, wherever they are", async () => {
    const elsewhere = await writeTree(PROJECT);
    try {
      const when = new Date("2024-01-02T03:04:05Z");
      const a = (await buildArtifact(dir, { key, builtAt: when })).artifact;
      const b = (await buildArtifact(elsewhere, { key, builtAt: when })).artifact;
      expect(b.files["module.js"]).toEqual(a.files["module.js"]);
      expect(b.files["module.js.map"]).toEqual(a.files["module.js.map"]);
      expect(b.manifest.digest).toBe(a.manifest.digest);
      expect(a.manifest.digest).toBe(artifact.manifest.digest); // builtAt doesn't touch the digest
      expect(formatManifest(b.manifest)).toBe(formatManifest(a.manifest)); // signature too
      // written and read back: still the same bytes, still valid
      const out = `${elsewhere}/dist`;
      await writeArtifactDir(out, b);
      const back = await readArtifactDir(out);
      expect(back.manifest).toEqual(b.manifest);
      await verifyArtifact(back, { trustedKeys: [keyFile.publicKey] });
      // a changed source changes the digest
      await Deno.writeTextFile(
        `${elsewhere}/lib.ts`,
        `export const greet = (w: string) => "hi " + w;\n`,
      );
      const c = (await buildArtifact(elsewhere, { key, builtAt: when })).artifact;
      expect(c.manifest.digest).not.toBe(a.manifest.digest);
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  });

  test("bad project metadata is one clear error", async () => {
    const bad = await writeTree({ "mod.ts": "export default {};\n" });
    try {
      await expect(buildArtifact(bad)).rejects.toThrow(
        /no package name: set "name" in .*worky\.json/,
      );
      await expect(buildArtifact(bad, { name: "Acme", version: "1.0.0" })).rejects.toThrow(
        /"Acme" is not a package name/,
      );
      await expect(buildArtifact(bad, { name: "acme/x", version: "1.0" })).rejects.toThrow(
        /"1.0" is not a version/,
      );
      await Deno.writeTextFile(`${bad}/worky.json`, JSON.stringify({ crons: ["nope"] }));
      await expect(buildArtifact(bad, { name: "acme/x", version: "1.0.0" })).rejects.toThrow(
        /crons\[0\]: "nope" is not a cron pattern/,
      );
    } finally {
      await Deno.remove(bad, { recursive: true });
    }
  });
});

describe("tampering is refused", () => {
  test("a changed byte of module.js", async () => {
    const a = copy(artifact);
    a.files["module.js"][10] ^= 1;
    expect((await refusal(a)).message).toMatch(/file module\.js does not match manifest\.json/);
  });

  test("a changed byte of the source map", async () => {
    const a = copy(artifact);
    a.files["module.js.map"][5] ^= 1;
    expect((await refusal(a)).message).toMatch(/file module\.js\.map does not match/);
  });

  test("a swapped file (another build's module.js)", async () => {
    const a = copy(artifact);
    a.files["module.js"] = new TextEncoder().encode(
      "export default { fetch: () => new Response('evil') };\n",
    );
    expect((await refusal(a)).message).toMatch(/module\.js does not match/);
  });

  test("a missing or extra file", async () => {
    const a = copy(artifact);
    delete a.files["module.js.map"];
    expect((await refusal(a)).message).toMatch(/module\.js\.map is missing/);
    const b = copy(artifact);
    b.files["evil.js"] = new Uint8Array([1]);
    expect((await refusal(b)).message).toMatch(/evil\.js is not listed/);
  });

  test("a changed manifest field (permissions, hashes rewritten to match)", async () => {
    const a = copy(artifact);
    a.manifest.permissions = { net: true };
    expect((await refusal(a)).message).toMatch(/signature does not match manifest\.json/);
    // rewriting the hash of a swapped file to match doesn't help: the signature covers it
    const b = copy(artifact);
    b.files["module.js"] = new TextEncoder().encode("evil");
    const { sha256Hex } = await import("../../../runtime/artifact/_encoding.ts");
    const { filesDigest } = await import("../../../runtime/artifact/manifest.ts");
    b.manifest.files["module.js"] = { sha256: await sha256Hex(b.files["module.js"]), size: 4 };
    b.manifest.size = 4 + b.files["module.js.map"].length;
    b.manifest.digest = await filesDigest(b.manifest.files);
    expect((await refusal(b)).message).toMatch(/signature does not match/);
  });

  test("a corrupt signature", async () => {
    const a = copy(artifact);
    const sig = a.manifest.signature!.value;
    a.manifest.signature!.value = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
    expect((await refusal(a)).message).toMatch(/signature does not match/);
  });

  test("a missing signature", async () => {
    const a = copy(artifact);
    delete a.manifest.signature;
    expect((await refusal(a)).message).toMatch(/is not signed/);
  });

  test("a signature by a key that isn't trusted (re-signed by someone else)", async () => {
    const a = { ...copy(artifact), manifest: await signManifest(artifact.manifest, other) };
    expect((await refusal(a)).message).toMatch(/signed by ed25519:.*which is not a trusted key/);
    expect((await refusal(artifact, [])).message).toMatch(/no \[registry\] trusted_keys/);
  });

  test("a manifest that isn't a manifest", () => {
    expect(() => parseManifest("{", "dist/x")).toThrow(
      /artifact dist\/x: manifest\.json is not JSON/,
    );
    const text = formatManifest({ ...artifact.manifest, version: "one" });
    expect(() => parseManifest(text, "dist/x")).toThrow(/version: "one" is not a version/);
  });
});
