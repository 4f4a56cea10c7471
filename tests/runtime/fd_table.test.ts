/**
 * The file-descriptor table grown at start (`runtime/fd_table.ts`): in a fresh process for real,
 * in a real `worky` server before it listens, and its budget against the open-files limit.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type FdTableIo, fdTableSize, presizeFdTable } from "../../runtime/fd_table.ts";
import { REPO, writeTree } from "../_helpers/fixture.ts";
import { startWorkyChild, type WorkyProcess } from "../_helpers/worky_process.ts";

const linux = Deno.build.os === "linux";

/** Descriptors numbered from 10 up, with the ones still open; the n-th open throws. */
function fakeIo(limit: number | undefined, failAt = Infinity) {
  const open = new Set<number>();
  let next = 10;
  const io: FdTableIo = {
    open() {
      if (next - 10 >= failAt) throw new Error("EMFILE");
      open.add(next);
      return next++;
    },
    close: (fd) => void open.delete(fd),
    softLimit: () => limit,
    tableSize: () => 64,
  };
  return { io, open, opened: () => next - 10 };
}

describe("presizeFdTable", () => {
  const children: WorkyProcess[] = [];
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop()));
  });

  it.skipIf(!linux)(
    "grows a fresh process's table to 4096 entries and leaves no fd open",
    async () => {
      const code = `
      import { fdTableSize as size, presizeFdTable } from "${REPO}runtime/fd_table.ts";
      const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
      const before = { size: size(), fds: fds() };
      const highest = presizeFdTable();
      const after = { size: size(), fds: fds() };
      console.log(JSON.stringify({ before, highest, after, again: presizeFdTable() }));
    `;
      const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code] }).output();
      expect(new TextDecoder().decode(out.stderr)).toBe("");
      const r = JSON.parse(new TextDecoder().decode(out.stdout));
      expect(r.before.size).toBeLessThan(4096);
      expect(r.highest).toBe(2048);
      expect(r.after.size).toBeGreaterThanOrEqual(4096);
      expect(r.after.fds).toBe(r.before.fds);
      expect(r.again).toBe(-1); // grown already: nothing opened
    },
  );

  it.skipIf(!linux)("runs in a worky server before it listens", async () => {
    const dir = await writeTree({
      "worky.toml": `[server]\nport = 0\ndata_dir = ".worky"\n` +
        `[tenants.hello]\nmodule = "hello.ts"\nroutes = ["*/*"]\n`,
      "hello.ts": `export default { fetch: () => new Response("hi") };`,
    });
    const child = await startWorkyChild(`${dir}/worky.toml`, { spares: 0 });
    children.push(child);
    expect(fdTableSize(child.process.pid)).toBeGreaterThanOrEqual(4096);
    expect(await (await fetch(child.url)).text()).toBe("hi");
    await Deno.remove(dir, { recursive: true });
  });

  it("stops at the first descriptor numbered half the entries or more, and closes them all", () => {
    const { io, open, opened } = fakeIo(20_000);
    expect(presizeFdTable(256, io)).toBe(128);
    expect(opened()).toBe(119); // 10…128
    expect(open.size).toBe(0);
  });

  it("takes at most half the soft open-files limit", () => {
    const { io, open, opened } = fakeIo(100);
    expect(presizeFdTable(4096, io)).toBe(59);
    expect(opened()).toBe(50);
    expect(open.size).toBe(0);
  });

  it("opens nothing when the table holds the entries already", () => {
    const { io, opened } = fakeIo(20_000);
    expect(presizeFdTable(256, { ...io, tableSize: () => 256 })).toBe(-1);
    expect(presizeFdTable(256, { ...io, tableSize: () => undefined })).toBe(128);
    expect(opened()).toBe(119);
  });

  it("keeps what grew when opening fails, and closes what it opened", () => {
    const { io, open } = fakeIo(undefined, 30);
    expect(presizeFdTable(4096, io)).toBe(39);
    expect(open.size).toBe(0);
    expect(presizeFdTable(4096, fakeIo(undefined, 0).io)).toBe(-1);
  });
});
