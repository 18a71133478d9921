import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { RedisClient } from "../../queue/redis.js";

export interface WorkspaceRateLimitOptions {
  /** Requests per workspace per window; 0 turns the limit off. */
  max: number;
  windowMs: number;
  /** With Redis the count is shared by every API process; in memory each process counts on its own. */
  redis?: RedisClient;
}

class RateLimitedError extends Error {
  statusCode = 429;
  code = "rate_limited";
}

/**
 * Limits requests per workspace (not per IP: many workspaces share a proxy, one workspace has many clients).
 * Register it after apiKeyAuth and before the routes of the scope: the limit hooks into each route added later,
 * and runs after the auth hook, so unauthenticated requests are answered 401 without counting.
 */
export const workspaceRateLimit = fp(async (app: FastifyInstance, opts: WorkspaceRateLimitOptions) => {
  if (opts.max <= 0) return;
  await app.register(rateLimit, {
    max: opts.max,
    timeWindow: opts.windowMs,
    keyGenerator: (req) => req.workspaceId,
    nameSpace: "roster-ratelimit-",
    ...(opts.redis ? { redis: opts.redis } : {}),
    // A Redis outage must not take the API down with it: requests pass uncounted meanwhile.
    skipOnError: true,
    errorResponseBuilder: (_req, ctx) =>
      new RateLimitedError(`This workspace made more than ${ctx.max} requests in ${ctx.after}; retry after the number of seconds in Retry-After.`),
  });
});
