/**
 * drizzle-kit configuration: generates the SQL migrations of
 * `control-plane/storage/schema.ts` into `control-plane/storage/migrations/`.
 *
 * Run: `node node_modules/drizzle-kit/bin.cjs generate`
 */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./control-plane/storage/schema.ts",
  out: "./control-plane/storage/migrations",
});
