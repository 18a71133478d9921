import { loadEnv } from "../config/env.js";
import { createLogger } from "../lib/logger.js";
import { ensureDatabase, runMigrations } from "./migrate.js";

const env = loadEnv();
const log = createLogger(env);
try {
  await ensureDatabase(env.DATABASE_URL);
  await runMigrations(env.DATABASE_URL);
  log.info("migrations applied");
} catch (err) {
  log.fatal({ err }, "migration failed");
  process.exitCode = 1;
}
