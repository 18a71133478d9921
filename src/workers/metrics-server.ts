import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../metrics/metrics.js";
import { QUEUE_NAMES } from "../queue/jobs.js";
import type { Runtime } from "../runtime.js";

/**
 * A worker-only process has no API to scrape, yet its registry holds the job durations and import row counters:
 * this small listener serves GET /metrics for it (enable with WORKER_METRICS_PORT).
 */
export async function startMetricsServer(rt: Pick<Runtime, "metrics" | "producer" | "logger">, host: string, port: number) {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    renderMetrics(
      rt.metrics,
      QUEUE_NAMES.map((q) => rt.producer.queue(q)),
    ).then(
      (body) => res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(body),
      (err: unknown) => {
        rt.logger.warn({ err: (err as Error).message }, "metrics scrape failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
