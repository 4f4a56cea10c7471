/**
 * A server that runs tenants in its own process from a terminal, with Deno's permission prompts
 * on, refuses to start: a tenant lacking a permission would ask the operator there, and a "y"
 * would grant it (measured). Through a real pseudo-terminal (util-linux `script`) where there is
 * one, and the decision itself for every case.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertNoPermissionPrompts } from "../../control-plane/permission_prompts.ts";
import { writeTree } from "../_helpers/fixture.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;
const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

describe("assertNoPermissionPrompts", () => {
  const terminal = { stdinIsTerminal: true, stderrIsTerminal: true, noPromptEnv: undefined };
  test("refuses a terminal where deno runs without --no-prompt", () => {
    expect(() => assertNoPermissionPrompts({ ...terminal, cmdline: ["deno", "run", "-A", "m.ts"] }))
      .toThrow(/ERR_PERMISSION_PROMPTS|--no-prompt/);
  });
  test("allows --no-prompt, DENO_NO_PROMPT, a compiled binary, a stdin or stderr that is no terminal", () => {
    assertNoPermissionPrompts({ ...terminal, cmdline: ["deno", "run", "--no-prompt", "m.ts"] });
    assertNoPermissionPrompts({ ...terminal, cmdline: [], noPromptEnv: "1" });
    assertNoPermissionPrompts({ ...terminal, cmdline: [], stdinIsTerminal: false });
    assertNoPermissionPrompts({ ...terminal, cmdline: [], stderrIsTerminal: false });
    assertNoPermissionPrompts({ ...terminal, cmdline: ["./worky-bin"], standalone: true });
  });
});

describe.skipIf(!SCRIPT)("worky serve --no-supervise on a terminal", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await writeTree({
      "worky.toml":
        `[server]\ndata_dir = "state"\n[tenants.t]\nmodule = "t.ts"\nroutes = ["*/*"]\n`,
      "t.ts":
        `export default { fetch: () => new Response(Deno.readTextFileSync("/etc/hostname")) };`,
    });
  });
  afterAll(() => Deno.remove(dir, { recursive: true }));

  /**
   * Runs the server under a pseudo-terminal for up to 20 s; once it listens, `serving` gets its
   * URL, then it is stopped. Its output and exit code.
   */
  async function onTerminal(denoFlags: string[], serving?: (url: string) => Promise<void>) {
    const cmd = [Deno.execPath(), "run", "-A", ...denoFlags, "--unstable-worker-options", MAIN]
      .concat(["serve", "--no-supervise", "--port", "0", "--config", `${dir}/worky.toml`])
      .map((a) => `'${a}'`).join(" ");
    const child = new Deno.Command(SCRIPT!, {
      args: ["-qec", cmd, "/dev/null"],
      cwd: dir,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let out = "";
    const reading = (async () => {
      for await (const t of child.stdout.pipeThrough(new TextDecoderStream())) out += t;
    })();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !/listening on|ERR_/.test(out)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /listening on (http:\/\/[0-9.:]+)/.exec(out)?.[1];
    if (url) {
      try {
        await serving?.(url);
      } finally {
        child.kill("SIGTERM");
      }
    }
    const status = await child.status;
    await reading;
    await child.stdin.close().catch(() => {});
    await child.stderr.cancel();
    return { out, code: status.code };
  }

  test("refuses to start without --no-prompt", async () => {
    const { out, code } = await onTerminal([]);
    expect(code).not.toBe(0);
    expect(out).toMatch(/ERR_PERMISSION_PROMPTS: refusing to serve tenants from this terminal/);
    expect(out).not.toMatch(/listening on/);
  }, 30_000);

  test(
    "starts with --no-prompt, and a tenant's missing permission is refused, not asked",
    async () => {
      let answer = "";
      const { out } = await onTerminal(["--no-prompt"], async (url) => {
        answer = await (await fetch(`${url}/`)).text();
      });
      expect(out).toMatch(/listening on/);
      expect(answer).toMatch(/Requires read access to \\?"\/etc\/hostname\\?"/);
      expect(out).not.toMatch(/Deno requests read access/);
    },
    30_000,
  );
});
