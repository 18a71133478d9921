import type { FastifyInstance, FastifyRequest, RouteHandlerMethod, RouteOptions } from "fastify";
import fp from "fastify-plugin";
import type { Db } from "../../db/client.js";
import { fingerprint, withIdempotency } from "../../domain/idempotency.js";
import { errorResponses } from "../schemas/common.js";

/** How a route that creates something takes part in `Idempotency-Key` replays (API.md). */
export interface IdempotentRoute {
  /** The created resource's path, from the response body: sent as `Location`, on replays too. */
  location?: (body: { id: string }) => string;
  /** What makes two requests the same one (default: the validated body); read after the route's preHandler hooks. */
  request?: (req: FastifyRequest) => object;
}

declare module "fastify" {
  interface FastifyContextConfig {
    idempotent?: IdempotentRoute;
  }
}

/**
 * Routes with `config.idempotent` run their handler through withIdempotency: the same key with the same request
 * answers the original status and body (and Location); with another request, 422. Such a handler sets the status
 * and returns its body rather than sending it, so the response can be stored before it leaves.
 * Register it in the scope before the routes (it wraps each as it is added).
 */
export const idempotencyPlugin = fp(async (app: FastifyInstance, opts: { db: Db }) => {
  app.addHook("onRoute", (route: RouteOptions) => {
    const spec = route.config?.idempotent;
    if (!spec) return;
    // Part of every fingerprint: the same key on two routes is two requests. Keep it stable, stored keys depend on it.
    const name = `${String(route.method)} ${route.url}`;
    const handler = route.handler;
    const wrapped: RouteHandlerMethod = async function (this: FastifyInstance, req, reply) {
      const header = req.headers["idempotency-key"];
      const key = typeof header === "string" ? header : undefined;
      // The fingerprint only matters with a key.
      const hash = key === undefined ? "" : fingerprint({ route: name, ...(spec.request ? spec.request(req) : (req.body as object | undefined)) });
      const res = await withIdempotency(opts.db, req.workspaceId, key, hash, async () => {
        const body: unknown = await handler.call(this, req, reply);
        if (reply.sent) throw new Error(`${name}: an idempotent handler returns its body instead of sending it`);
        return { statusCode: reply.statusCode, body };
      });
      reply.status(res.statusCode);
      if (spec.location) reply.header("location", spec.location(res.body as { id: string }));
      return res.body;
    };
    route.handler = wrapped;
    // 409 while the first request with the key still runs; 422 for the key reused with another request.
    route.schema = { ...route.schema, response: { ...errorResponses(409, 422), ...(route.schema?.response as object | undefined) } };
  });
});
