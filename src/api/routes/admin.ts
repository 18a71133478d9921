import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { createApiKey, createWorkspace, revokeApiKey } from "../../domain/workspaces/workspaces.js";
import { eq } from "drizzle-orm";
import { workspaces } from "../../db/schema.js";
import { ConflictError, NotFoundError } from "../../domain/errors.js";
import { workspaceWebhookSecret } from "../../domain/webhooks/signature.js";
import { errorResponse, noContent } from "../schemas/common.js";
import { isUuid } from "../../lib/uuid.js";
import type { AppDeps } from "../app.js";

export async function adminRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "env" | "apiKeys">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.post(
    "/workspaces",
    {
      schema: {
        body: z.object({ name: z.string().trim().min(1).max(200) }),
        response: { 201: z.object({ id: z.string(), name: z.string(), apiKey: z.string(), keyId: z.string() }).describe("The workspace") },
      },
      config: { docs: { summary: "Create a workspace and its first API key (shown once)" } },
    },
    async (req, reply) => {
      const ws = await createWorkspace(deps.db, req.body.name);
      return reply.status(201).send({ id: ws.id, name: ws.name, apiKey: ws.apiKey, keyId: ws.keyId });
    },
  );

  app.post(
    "/workspaces/:id/keys",
    { schema: { params: z.object({ id: z.string() }), response: { 201: z.object({ id: z.string(), apiKey: z.string() }).describe("The key") } }, config: { docs: { summary: "Create another API key (shown once)" } } },
    async (req, reply) => {
      if (!isUuid(req.params.id)) throw new NotFoundError("Workspace");
      const key = await createApiKey(deps.db, req.params.id);
      return reply.status(201).send(key);
    },
  );

  app.delete(
    "/workspaces/:id/keys/:keyId",
    { schema: { params: z.object({ id: z.string(), keyId: z.string() }), response: { 204: noContent("Revoked") } }, config: { docs: { summary: "Revoke an API key" } } },
    async (req, reply) => {
      if (!isUuid(req.params.id) || !isUuid(req.params.keyId)) throw new NotFoundError("API key");
      await revokeApiKey(deps.db, req.params.id, req.params.keyId, deps.apiKeys);
      return reply.status(204).send();
    },
  );

  app.get(
    "/workspaces/:id/webhook-secret",
    {
      schema: { params: z.object({ id: z.string() }), response: { 200: z.object({ secret: z.string() }).describe("The secret"), 409: errorResponse("Webhooks are not configured") } },
      config: { docs: { summary: "The workspace's webhook signing secret (derived from WEBHOOK_SIGNING_KEY; verify Roster-Signature with it)" } },
    },
    async (req) => {
      if (!isUuid(req.params.id)) throw new NotFoundError("Workspace");
      const [ws] = await deps.db.select({ id: workspaces.id }).from(workspaces).where(eq(workspaces.id, req.params.id));
      if (!ws) throw new NotFoundError("Workspace");
      if (!deps.env.WEBHOOK_SIGNING_KEY) throw new ConflictError("webhooks_disabled", "Webhooks are not configured: set WEBHOOK_SIGNING_KEY.");
      return { secret: workspaceWebhookSecret(deps.env.WEBHOOK_SIGNING_KEY, ws.id) };
    },
  );
}
