import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import type { Env } from "../config/env.js";
import type { Db } from "../db/client.js";
import type { Logger } from "../lib/logger.js";
import type { Producer } from "../queue/producer.js";
import type { Storage } from "../storage/storage.js";
import { adminAuth, apiKeyAuth } from "./plugins/auth.js";
import { errorsPlugin } from "./plugins/errors.js";
import { adminRoutes } from "./routes/admin.js";
import { exportRoutes } from "./routes/exports.js";
import { healthRoutes } from "./routes/health.js";
import { importRoutes } from "./routes/imports.js";

export interface AppDeps {
  env: Env;
  db: Db;
  redis: Redis;
  producer: Producer;
  storage: Storage;
  logger: Logger;
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
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });

  await app.register(errorsPlugin);
  await app.register(healthRoutes, deps);
  await app.register(
    async (v1) => {
      await v1.register(
        async (admin) => {
          await admin.register(adminAuth, { adminToken: deps.env.ADMIN_TOKEN });
          await admin.register(adminRoutes, deps);
        },
        { prefix: "/admin" },
      );
      await v1.register(async (scoped) => {
        await scoped.register(apiKeyAuth, { db: deps.db });
        await scoped.register(workspaceRoutes, deps);
        await scoped.register(importRoutes, deps);
        await scoped.register(exportRoutes, deps);
      });
    },
    { prefix: "/v1" },
  );
  if (!deps.env.ADMIN_TOKEN) deps.logger.warn("ADMIN_TOKEN is not set: admin routes and the queue dashboard are disabled");
  return app as unknown as FastifyInstance;
}

/** Routes that act for the workspace of the caller's API key. */
async function workspaceRoutes(app: FastifyInstance): Promise<void> {
  app.get("/me", async (req) => ({ workspaceId: req.workspaceId }));
}
