import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import type { Env } from "../config/env.js";
import type { Db } from "../db/client.js";
import type { ApiKeyCache } from "../domain/workspaces/api-key-cache.js";
import { parseJson } from "../lib/json.js";
import type { Logger } from "../lib/logger.js";
import type { Metrics } from "../metrics/metrics.js";
import { QUEUE_NAMES } from "../queue/jobs.js";
import { deletionRoutes } from "./routes/deletions.js";
import type { Producer } from "../queue/producer.js";
import type { RedisClient } from "../queue/redis.js";
import type { Storage } from "../storage/storage.js";
import { adminAuth, apiKeyAuth } from "./plugins/auth.js";
import { consolePlugin } from "./plugins/console.js";
import { dashboardPlugin } from "./plugins/dashboard.js";
import { docsPlugin } from "./plugins/docs.js";
import { clientErrorHandler, errorsPlugin } from "./plugins/errors.js";
import { idempotencyPlugin } from "./plugins/idempotency.js";
import { metricsPlugin, metricsRoute } from "./plugins/metrics.js";
import { workspaceRateLimit } from "./plugins/rate-limit.js";
import { declaredSerializer, declareErrors } from "./plugins/responses.js";
import { z } from "zod";
import { adminRoutes } from "./routes/admin.js";
import { attributeRoutes } from "./routes/attributes.js";
import { exportRoutes } from "./routes/exports.js";
import { healthRoutes } from "./routes/health.js";
import { importProgressRoutes } from "./routes/import-progress.js";
import { importRoutes } from "./routes/imports.js";
import { mappingTemplateRoutes } from "./routes/mapping-templates.js";
import { labelRoutes } from "./routes/labels.js";
import { memberRoutes } from "./routes/members.js";
import { segmentRoutes } from "./routes/segments.js";
import { userRoutes } from "./routes/users.js";
import { webhookRoutes } from "./routes/webhooks.js";

/** The API version shown in the OpenAPI document. */
const APP_VERSION = "1.0.0";

export interface AppDeps {
  env: Env;
  db: Db;
  redis: RedisClient;
  producer: Producer;
  storage: Storage;
  logger: Logger;
  metrics: Metrics;
  /** Valid API keys seen recently (Runtime.apiKeys); without it every request looks its key up. */
  apiKeys?: ApiKeyCache;
}

/** Builds the API from its dependencies; nothing here listens (see server.ts). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
    },
    bodyLimit: deps.env.PASTE_MAX_BYTES,
    trustProxy: true,
    return503OnClosing: true,
    clientErrorHandler,
  });
  // Plain JSON.parse instead of Fastify's secure-json-parse, whose refusal of a "__proto__" key surfaced as a
  // misleading invalid_json: such a key is data, and the schemas say precisely where it is refused (lib/json.ts).
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });

  await app.register(errorsPlugin);
  await app.register(docsPlugin, { version: APP_VERSION });
  await app.register(metricsPlugin, { metrics: deps.metrics });
  await app.register(dashboardPlugin, {
    adminToken: deps.env.ADMIN_TOKEN,
    readOnly: deps.env.DASHBOARD_READ_ONLY,
    queues: QUEUE_NAMES.map((q) => deps.producer.queue(q)),
  });
  await app.register(consolePlugin);
  // The API's routes validate with zod and answer through their declared zod responses. The compilers are set in this
  // scope, not at the root, where they would break plugins that bring JSON-schema routes of their own.
  await app.register(async (api) => {
    api.setValidatorCompiler(validatorCompiler);
    api.setSerializerCompiler(declaredSerializer);
    await api.register(healthRoutes, deps);
    await api.register(metricsRoute, { metrics: deps.metrics, producer: deps.producer });
    await api.register(
      async (v1) => {
        await v1.register(
          async (admin) => {
            admin.addHook("onRoute", declareErrors(401, 404, 422));
            await admin.register(adminAuth, { adminToken: deps.env.ADMIN_TOKEN });
            await admin.register(adminRoutes, deps);
          },
          { prefix: "/admin" },
        );
        await v1.register(async (scoped) => {
          scoped.addHook("onRoute", declareErrors(401, 422, 429, 503));
          await scoped.register(apiKeyAuth, { db: deps.db, cache: deps.apiKeys });
          await scoped.register(workspaceRateLimit, {
            max: deps.env.RATE_LIMIT_MAX,
            windowMs: deps.env.RATE_LIMIT_WINDOW_MS,
            ...(deps.env.RATE_LIMIT_STORE === "redis" ? { redis: deps.redis } : {}),
          });
          await scoped.register(idempotencyPlugin, { db: deps.db });
          await scoped.register(workspaceRoutes, deps);
          await scoped.register(importRoutes, deps);
          await scoped.register(segmentRoutes, deps);
          await scoped.register(userRoutes, deps);
          await scoped.register(exportRoutes, deps);
          await scoped.register(deletionRoutes, deps);
          await scoped.register(memberRoutes, deps);
          await scoped.register(mappingTemplateRoutes, deps);
          await scoped.register(importProgressRoutes, deps);
          await scoped.register(webhookRoutes, deps);
          await scoped.register(attributeRoutes, deps);
          await scoped.register(labelRoutes, deps);
        });
      },
      { prefix: "/v1" },
    );
  });
  if (!deps.env.ADMIN_TOKEN) deps.logger.warn("ADMIN_TOKEN is not set: admin routes and the queue dashboard are disabled");
  return app as unknown as FastifyInstance;
}

/** Routes that act for the workspace of the caller's API key. */
async function workspaceRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    "/me",
    { schema: { response: { 200: z.object({ workspaceId: z.string() }).describe("The workspace") } }, config: { docs: { summary: "The workspace of the API key" } } },
    async (req) => ({ workspaceId: req.workspaceId }),
  );
}
