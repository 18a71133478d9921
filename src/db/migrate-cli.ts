import { loadEnv } from "../config/env.js";
import { createLogger } from "../lib/logger.js";
import { ensureDatabase, runMigrations } from "./migrate.js";

try {
  const env = loadEnv();
  const log = createLogger(env);
  try {
    await ensureDatabase(env.DATABASE_URL);
    await runMigrations(env.DATABASE_URL, undefined, log);
    log.info("migrations applied");
  } catch (err) {
    log.fatal({ err }, "migration failed");
    process.exitCode = 1;
  }
} catch (err) {
  // A bad configuration: the message names the variables; a stack trace would only hide them.
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
