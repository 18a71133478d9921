import closeWithGrace from "close-with-grace";
import { loadEnv } from "../config/env.js";
import { isMain } from "../lib/is-main.js";
import { createLogger } from "../lib/logger.js";
import { createRuntime } from "../runtime.js";
import { buildApp } from "./app.js";

/** The only file that listens: starts the API, drains in-flight requests on SIGTERM/SIGINT. */
export async function startApi() {
  const env = loadEnv();
  const logger = createLogger(env);
  const rt = await createRuntime(env, logger);
  const app = await buildApp(rt);
  await app.listen({ host: env.HOST, port: env.PORT });
  return { app, rt };
}

if (isMain(import.meta.url)) {
  try {
    const { app, rt } = await startApi();
    closeWithGrace({ delay: rt.env.SHUTDOWN_TIMEOUT_MS }, async ({ err, signal }) => {
      if (err) rt.logger.error({ err }, "shutting down after an error");
      else rt.logger.info({ signal }, "shutting down");
      await app.close();
      await rt.close();
    });
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
