import closeWithGrace from "close-with-grace";
import { buildApp } from "./api/app.js";
import { loadEnv } from "./config/env.js";
import { createLogger } from "./lib/logger.js";
import { createRuntime } from "./runtime.js";
import { startWorkerRole } from "./workers/main.js";

/** Local all-in-one: the API and a worker in one process (production runs them apart: start:api, start:worker). */
try {
  const env = loadEnv();
  const logger = createLogger(env);
  const rt = await createRuntime(env, logger);
  const pool = await startWorkerRole(rt);
  const app = await buildApp(rt);
  await app.listen({ host: env.HOST, port: env.PORT });
  closeWithGrace({ delay: env.SHUTDOWN_TIMEOUT_MS + 5_000 }, async ({ err, signal }) => {
    if (err) logger.error({ err }, "shutting down after an error");
    else logger.info({ signal }, "shutting down");
    await app.close();
    await pool.close();
    await rt.close();
  });
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
