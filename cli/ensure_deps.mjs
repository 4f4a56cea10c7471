// Installs npm dependencies when node_modules is missing or older than the
// manifest or lock file. Runs under Node before any npm package exists.
//
// Why `npm install` and not `npm ci`: the registry reachable here lacks some
// optional platform packages (rollup, deno for other OSes), so the lock file
// cannot list them and `npm ci` refuses it as out of sync. `npm install`
// honours the lock's versions and tolerates the missing optionals.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const mtime = (rel) => {
  try {
    return statSync(root + rel).mtimeMs;
  } catch {
    return null;
  }
};

const installed = mtime("node_modules/.package-lock.json");
const newest = Math.max(mtime("package.json") ?? 0, mtime("package-lock.json") ?? 0);
if (installed === null || newest > installed) {
  console.error("worky: installing npm dependencies (npm install)…");
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund"], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) {
    console.error(
      `worky: 'npm install' failed (exit ${r.status ?? r.signal}); see its output above`,
    );
    process.exit(r.status ?? 1);
  }
}
