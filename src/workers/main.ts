import closeWithGrace from "close-with-grace";
import { loadEnv } from "../config/env.js";
import { isMain } from "../lib/is-main.js";
import { createLogger } from "../lib/logger.js";
import { registerSchedules } from "../queue/schedules.js";
import { createRuntime, type Runtime } from "../runtime.js";
import { startMetricsServer } from "./metrics-server.js";
import { buildGaveUpHandlers, buildProcessors, buildReconcileEnded, buildRunDeps } from "./processors/index.js";
import { startReconciler } from "./reconciler.js";
import { startWorkers, type WorkerPool } from "./worker-pool.js";

/**
 * Starts a processor for every job kind on the runtime's queues, registers the recurring jobs, and starts the
 * reconciler that re-enqueues work whose job was lost.
 */
export async function startWorkerRole(rt: Runtime): Promise<WorkerPool> {
  const pool = await startWorkers(rt.env, rt.logger, buildProcessors(rt), { metrics: rt.metrics, onGaveUp: buildGaveUpHandlers(rt) });
  try {
    await registerSchedules(rt.producer, rt.env, rt.logger);
  } catch (err) {
    await pool.close();
    throw err;
  }
  const reconciler = startReconciler({ db: rt.db, producer: rt.producer, log: rt.logger, announce: buildRunDeps(rt).announce, schedules: rt.env, ended: buildReconcileEnded(rt) }, rt.env.RECONCILE_INTERVAL_MS);
  return {
    workers: pool.workers,
    async close() {
      await reconciler.stop();
      await pool.close();
    },
  };
}

if (isMain(import.meta.url)) {
  try {
    const env = loadEnv();
    const logger = createLogger(env);
    const rt = await createRuntime(env, logger);
    const pool = await startWorkerRole(rt);
    const metricsServer = env.WORKER_METRICS_PORT === undefined ? null : await startMetricsServer(rt, env.HOST, env.WORKER_METRICS_PORT);
    if (metricsServer) logger.info({ port: metricsServer.port }, "worker metrics listening on /metrics");
    // close-with-grace's own delay is a backstop; the pool bounds its close by SHUTDOWN_TIMEOUT_MS.
    closeWithGrace({ delay: env.SHUTDOWN_TIMEOUT_MS + 5_000 }, async ({ err, signal }) => {
      if (err) logger.error({ err }, "worker shutting down after an error");
      else logger.info({ signal }, "worker shutting down");
      await metricsServer?.close();
      await pool.close();
      await rt.close();
    });
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
