/** The record of moves into cells (`cell_moves.ts`), on real files. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CELL_MOVES_FILE, CellMoves } from "../../../control-plane/cells/cell_moves.ts";

let dir = "";
beforeEach(async () => {
  dir = await Deno.makeTempDir({ prefix: "worky-cell-moves-" });
});
afterEach(async () => {
  await Deno.remove(dir, { recursive: true });
});

const at = new Date("2026-11-21T12:00:00Z");

describe("CellMoves", () => {
  it("keeps moves for processes of the same supervisor run only", async () => {
    await new CellMoves(dir, "run-a").record("huge", { why: "big bodies", misbehaved: false }, at);
    expect(await new CellMoves(dir, "run-a").read()).toEqual({
      huge: { why: "big bodies", misbehaved: false, at: at.toISOString() },
    });
    expect(await new CellMoves(dir, "run-b").read()).toEqual({});
    // a new run's first move replaces the old run's record
    await new CellMoves(dir, "run-b").record("exit", { why: "Deno.exit", misbehaved: true }, at);
    expect(Object.keys(await new CellMoves(dir, "run-b").read())).toEqual(["exit"]);
    expect(await new CellMoves(dir, "run-a").read()).toEqual({});
  });

  it("forgets a tenant that is deployed again", async () => {
    const moves = new CellMoves(dir, "run");
    await moves.record("a", { why: "x", misbehaved: true }, at);
    await moves.record("b", { why: "y", misbehaved: false }, at);
    await moves.forget("a");
    expect(Object.keys(await moves.read())).toEqual(["b"]);
  });

  it("marks a move misbehaved once, keeping why it moved; not a tenant it never moved", async () => {
    const moves = new CellMoves(dir, "run");
    await moves.record("huge", { why: "big bodies", misbehaved: false }, at);
    await moves.misbehaved("huge", "ERR_TENANT_MEMORY");
    await moves.misbehaved("huge", "died again");
    await moves.misbehaved("configured", "ERR_TENANT_TIMEOUT");
    expect(await new CellMoves(dir, "run").read()).toEqual({
      huge: {
        why: "big bodies; then in its cell: ERR_TENANT_MEMORY",
        misbehaved: true,
        at: at.toISOString(),
      },
    });
  });

  it("is a no-op without a supervisor run", async () => {
    const moves = new CellMoves(dir, undefined);
    await moves.record("a", { why: "x", misbehaved: true }, at);
    expect(await moves.read()).toEqual({});
    await expect(Deno.stat(`${dir}/${CELL_MOVES_FILE}`)).rejects.toThrow();
  });

  it("names the file and what is wrong with a bad record", async () => {
    await Deno.writeTextFile(`${dir}/${CELL_MOVES_FILE}`, "{ nope");
    await expect(new CellMoves(dir, "run").read()).rejects.toThrow(
      new RegExp(`${CELL_MOVES_FILE}: not JSON`),
    );
    await Deno.writeTextFile(
      `${dir}/${CELL_MOVES_FILE}`,
      JSON.stringify({ run: "run", tenants: { a: { why: 1 } } }),
    );
    await expect(new CellMoves(dir, "run").read()).rejects.toThrow(
      /tenants\.a must be \{ why: string, misbehaved: boolean, at: ISO time \}/,
    );
    // a write replaces the unreadable record
    await new CellMoves(dir, "run").record("b", { why: "y", misbehaved: false }, at);
    expect(Object.keys(await new CellMoves(dir, "run").read())).toEqual(["b"]);
  });
});
