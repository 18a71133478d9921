import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { sql } from "drizzle-orm";
import { whenReady } from "../../queue/redis.js";
import { z } from "zod";
import type { AppDeps } from "../app.js";
import { errorResponse } from "../schemas/common.js";
import { withTimeout } from "../../lib/timeout.js";

const checksSchema = z.record(z.string(), z.enum(["up", "down"]));
const readyResponses = {
  200: z.object({ status: z.literal("ready"), checks: checksSchema }).describe("Ready"),
  503: errorResponse("A dependency is down (details.checks says which)"),
};

/** How long each readiness probe may take before its dependency counts as down. */
const PROBE_TIMEOUT_MS = 1_500;

export async function healthRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "redis" | "storage">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/healthz",
    { schema: { response: { 200: z.object({ status: z.literal("ok") }).describe("Up") } }, config: { docs: { summary: "The process is up" } } },
    async () => ({ status: "ok" as const }),
  );

  app.get("/readyz", { schema: { response: readyResponses }, config: { docs: { summary: "Postgres, Redis and storage are reachable" } } }, async (_req, reply) => {
    const probes: Record<string, () => Promise<unknown>> = {
      postgres: async () => deps.db.execute(sql`select 1`),
      redis: async () => {
        await whenReady(deps.redis, PROBE_TIMEOUT_MS);
        return deps.redis.ping();
      },
      storage: () => deps.storage.ping(),
    };
    const results = await Promise.all(
      Object.entries(probes).map(async ([name, probe]) => {
        try {
          await withTimeout(probe(), PROBE_TIMEOUT_MS, () => new Error(`timed out after ${PROBE_TIMEOUT_MS} ms`));
          return [name, "up"] as const;
        } catch {
          return [name, "down"] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const down = results.filter(([, s]) => s === "down").map(([n]) => n);
    if (down.length === 0) return { status: "ready" as const, checks };
    return reply.status(503).send({
      error: { code: "not_ready", message: `Not ready: ${down.join(", ")} ${down.length === 1 ? "is" : "are"} down.`, details: { checks } },
      requestId: reply.request.id,
    });
  });
}
