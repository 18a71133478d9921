import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { z } from "zod";
import { METRICS_CONTENT_TYPE, renderMetrics, type Metrics } from "../../metrics/metrics.js";
import type { Producer } from "../../queue/producer.js";
import { QUEUE_NAMES } from "../../queue/jobs.js";

/** Times every request and serves this process's metrics at GET /metrics (Prometheus text). */
export const metricsPlugin = fp(async (app: FastifyInstance, opts: { metrics: Metrics; producer: Producer }) => {
  app.addHook("onResponse", async (req, reply) => {
    // The route template, not the URL: ids in paths would make one series per resource.
    const route = req.routeOptions.url ?? "unmatched";
    opts.metrics.httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.get(
    "/metrics",
    {
      config: {
        docs: {
          summary: "Prometheus metrics of this process (job counts per queue and state come from Redis)",
          responses: { 200: { description: "Prometheus text format 0.0.4", content: { "text/plain": z.string() } } },
        },
      },
    },
    async (_req, reply) => {
      const body = await renderMetrics(
        opts.metrics,
        QUEUE_NAMES.map((q) => opts.producer.queue(q)),
      );
      return reply.header("content-type", METRICS_CONTENT_TYPE).send(body);
    },
  );
});
