/**
 * `node:net` below `net.Socket#connect`: Deno's node compatibility layer exposes its TCP
 * handle class (`process.binding("tcp_wrap")`, and the `constructor` of any socket's `_handle`),
 * whose `connect(req, address, port)` dials an address with nothing but Deno's own permission
 * check. A tenant with `net = true` has every address in that grant, so these attempts aim at a
 * loopback listener the egress policy refuses (and at Worky's own port), through:
 *
 * - a handle made from the binding, with no socket around it;
 * - a new handle of the class an allowed connection's socket holds;
 * - that allowed connection's own handle, dialled again;
 * - a listening socket and a UDP socket made from bare handles.
 *
 * Controls: the allowed connection itself (to an address `allow_private` names) works, and so
 * does the legitimate use of the same handles by `net.connect`.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Fixture } from "../_helpers/fixture.ts";
import { ask, attackModule, startTenants } from "./_tenant.ts";
import { attempt } from "./_summary.ts";

/** A raw TCP listener that counts the connections it accepted. */
function listener(hostname: string) {
  const l = Deno.listen({ hostname, port: 0 });
  const out = { port: (l.addr as Deno.NetAddr).port, accepted: 0, close: () => l.close() };
  (async () => {
    for await (const c of l) {
      out.accepted++;
      c.write(new TextEncoder().encode("secret\n")).catch(() => {}).finally(() => c.close());
    }
  })().catch(() => {});
  return out;
}

const ATTACK = `
  const q = new URL(request.url).searchParams;
  const target = q.get("target"), port = Number(q.get("port"));
  const allowedPort = Number(q.get("allowedPort"));
  const net = await import("node:net");
  const { default: process } = await import("node:process");
  /** Dials with a bare handle; resolves with the status its completion reported. */
  const dial = (handle) => new Promise((resolve, reject) => {
    const req = { oncomplete: (status) => resolve(status) };
    try {
      const err = handle.connect(req, target, port);
      if (err) resolve(err);
    } catch (e) { reject(e); }
    setTimeout(() => resolve("no completion"), 2000);
  });
  /** An allowed connection (127.0.0.2 is named by allow_private), open. */
  const allowed = () => new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.2", port: allowedPort }, () => resolve(s));
    s.on("error", reject);
  });
  switch (q.get("how")) {
    case "control": {
      const s = await allowed();
      const text = await new Promise((resolve) => { let t = ""; s.on("data", (c) => t += c); s.on("end", () => resolve(t)); });
      return text.trim();
    }
    case "binding": {
      const { TCP } = process.binding("tcp_wrap").default ?? process.binding("tcp_wrap");
      return await dial(new TCP(0));
    }
    case "constructor": {
      const s = await allowed();
      const H = s._handle.constructor;
      s.destroy();
      return await dial(new H(0));
    }
    case "listen": { // a listening socket of its own, from a bare server handle
      const { TCP } = process.binding("tcp_wrap").default;
      const h = new TCP(1);
      h.bind("127.0.0.1", 0);
      return h.listen(16);
    }
    case "udp": { // a datagram to the refused loopback address, past node:dgram
      const { UDP, SendWrap } = process.binding("udp_wrap").default;
      const h = new UDP();
      h.bind("0.0.0.0", 0, 0);
      return h.send(new SendWrap(), [new TextEncoder().encode("x")], 1, port, target, false);
    }
    case "same_handle": {
      const s = await allowed();
      return await dial(s._handle);
    }
  }
  throw new Error("unknown how");
`;

let f: Fixture;
/** On 127.0.0.1: refused to the tenant (loopback, not named). */
let secret: ReturnType<typeof listener>;
/** On 127.0.0.2: named by the tenant's allow_private. */
let allowed: ReturnType<typeof listener>;

beforeAll(async () => {
  secret = listener("127.0.0.1");
  allowed = listener("127.0.0.2");
  const tenant = (name: string, extra = "") => ({
    module: attackModule(ATTACK),
    toml: `[tenants.${name}.permissions]\nnet = true\n` +
      `[tenants.${name}.egress]\nallow_private = ["127.0.0.2"]\n${extra}`,
  });
  f = await startTenants({
    evil: tenant("evil"),
    celled: tenant("celled", `[tenants.celled.limits]\nisolation = "cell"\n`),
  });
});
afterAll(async () => {
  await f?.close();
  secret?.close();
  allowed?.close();
});

for (const tenant of ["evil", "celled"]) {
  const where = tenant === "celled" ? " (in a cell)" : "";
  const run = (how: string, port = secret.port) =>
    ask(f, tenant, `/?how=${how}&target=127.0.0.1&port=${port}&allowedPort=${allowed.port}`);

  it(`control${where}: node:net reaches the address allow_private names`, async () => {
    const before = allowed.accepted;
    const { body } = await run("control");
    expect(body).toEqual({ ok: true, value: "secret" });
    expect(allowed.accepted).toBe(before + 1);
  });

  for (const how of ["binding", "constructor", "same_handle"]) {
    attempt(`node:net TCP handle (${how}) dials a refused loopback address${where}`, async () => {
      secret.accepted = 0;
      const { body } = await run(how);
      // the handle's connect completed with EACCES (the host refused the address)
      expect(body, JSON.stringify(body)).toEqual({ ok: true, value: -13 });
      expect(secret.accepted).toBe(0);
    });

    attempt(`node:net TCP handle (${how}) dials Worky's own port${where}`, async () => {
      const { body } = await run(how, Number(new URL(f.url).port));
      expect(body, JSON.stringify(body)).toEqual({ ok: true, value: -13 });
    });
  }

  for (const how of ["listen", "udp"]) {
    attempt(`node:net/node:dgram handle ${how} past the guarded modules${where}`, async () => {
      const { body } = await run(how);
      expect(body.ok, JSON.stringify(body)).toBe(false);
      expect(String(body.message)).toMatch(
        /not available to Worky tenants|only for a socket's own/,
      );
    });
  }
}
