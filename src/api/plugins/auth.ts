import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { Db } from "../../db/client.js";
import type { ApiKeyCache } from "../../domain/workspaces/api-key-cache.js";
import { authenticateApiKey } from "../../domain/workspaces/workspaces.js";
import { secretsEqual } from "../../lib/keys.js";
import { sendError } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    workspaceId: string;
  }
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== "string") return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

/** Registers the hook that resolves the API key to its workspace; every route in the scope requires one. */
export const apiKeyAuth = fp(async (app: FastifyInstance, opts: { db: Db; cache?: ApiKeyCache | undefined }) => {
  app.decorateRequest("workspaceId", "");
  app.addHook("onRequest", async (req, reply) => {
    const key = bearer(req);
    if (!key) return sendError(reply, 401, "unauthorized", "Send your API key as 'Authorization: Bearer <key>'.");
    const found = await authenticateApiKey(opts.db, key, opts.cache);
    if (!found) return sendError(reply, 401, "unauthorized", "The API key is not valid or has been revoked.");
    req.workspaceId = found.workspaceId;
    // Fastify gives each request its own child logger: pino's is bound in place rather than wrapped in another child.
    const log = req.log as typeof req.log & { setBindings?: (bindings: Record<string, unknown>) => void };
    if (typeof log.setBindings === "function") log.setBindings({ workspaceId: found.workspaceId });
    else req.log = req.log.child({ workspaceId: found.workspaceId });
  });
});

/** Admin routes: disabled (404) without ADMIN_TOKEN, 401 with a wrong one. */
export const adminAuth = fp(async (app: FastifyInstance, opts: { adminToken: string | undefined }) => {
  app.addHook("onRequest", async (req, reply) => {
    if (!opts.adminToken) return sendError(reply, 404, "not_found", "Admin routes are disabled: ADMIN_TOKEN is not set.");
    const token = bearer(req);
    if (!token || !secretsEqual(token, opts.adminToken)) {
      return sendError(reply, 401, "unauthorized", "Send the admin token as 'Authorization: Bearer <token>'.");
    }
  });
});
