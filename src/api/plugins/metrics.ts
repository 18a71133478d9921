import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { METRICS_CONTENT_TYPE, renderMetrics, type Metrics } from "../../metrics/metrics.js";
import type { Producer } from "../../queue/producer.js";
import { QUEUE_NAMES } from "../../queue/jobs.js";
import { textResponse } from "../schemas/common.js";

/** Times every request (registered at the root, so it sees them all). */
export const metricsPlugin = fp(async (app: FastifyInstance, opts: { metrics: Metrics }) => {
  app.addHook("onResponse", async (req, reply) => {
    // The route template, not the URL: ids in paths would make one series per resource.
    const route = req.routeOptions.url ?? "unmatched";
    opts.metrics.httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
});

/** This process's metrics at GET /metrics (Prometheus text). */
export async function metricsRoute(app: FastifyInstance, opts: { metrics: Metrics; producer: Producer }) {
  app.get(
    "/metrics",
    {
      schema: { response: { 200: textResponse("Prometheus text format 0.0.4", "text/plain") } },
      config: { docs: { summary: "Prometheus metrics of this process (job counts per queue and state come from Redis)" } },
    },
    async (_req, reply) => {
      const body = await renderMetrics(
        opts.metrics,
        QUEUE_NAMES.map((q) => opts.producer.queue(q)),
      );
      return reply.header("content-type", METRICS_CONTENT_TYPE).send(body);
    },
  );
}
