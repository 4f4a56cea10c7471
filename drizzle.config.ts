/**
 * drizzle-kit configuration: generates the SQL migrations of
 * `control-plane/storage/schema.ts` into `control-plane/storage/migrations/`.
 *
 * Run: `deno task db:generate --name <what>` (serialized with flock: several engineers
 * may add tables at once; each feature keeps its tables in `schema_<feature>.ts`).
 */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: ["./control-plane/storage/schema.ts", "./control-plane/storage/schema_*.ts"],
  out: "./control-plane/storage/migrations",
});
