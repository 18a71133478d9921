import type { FastifyInstance } from "fastify";
import { sql } from "drizzle-orm";
import { whenReady } from "../../queue/redis.js";
import type { AppDeps } from "../app.js";

/** How long each readiness probe may take before its dependency counts as down. */
const PROBE_TIMEOUT_MS = 1_500;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export async function healthRoutes(app: FastifyInstance, deps: Pick<AppDeps, "db" | "redis" | "storage">) {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_req, reply) => {
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
          await withTimeout(probe(), PROBE_TIMEOUT_MS);
          return [name, "up"] as const;
        } catch {
          return [name, "down"] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const down = results.filter(([, s]) => s === "down").map(([n]) => n);
    if (down.length === 0) return { status: "ready", checks };
    return reply.status(503).send({
      error: { code: "not_ready", message: `Not ready: ${down.join(", ")} ${down.length === 1 ? "is" : "are"} down.`, details: { checks } },
      requestId: reply.request.id,
    });
  });
}
