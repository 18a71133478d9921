import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { createApiKey, createWorkspace, revokeApiKey } from "../../domain/workspaces/workspaces.js";
import { NotFoundError } from "../../domain/errors.js";
import { isUuid } from "../../lib/uuid.js";
import type { AppDeps } from "../app.js";

export async function adminRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.post("/workspaces", { schema: { body: z.object({ name: z.string().trim().min(1).max(200) }) } }, async (req, reply) => {
    const ws = await createWorkspace(deps.db, req.body.name);
    return reply.status(201).send({ id: ws.id, name: ws.name, apiKey: ws.apiKey, keyId: ws.keyId });
  });

  app.post("/workspaces/:id/keys", { schema: { params: z.object({ id: z.string() }) } }, async (req, reply) => {
    if (!isUuid(req.params.id)) throw new NotFoundError("Workspace");
    const key = await createApiKey(deps.db, req.params.id);
    return reply.status(201).send(key);
  });

  app.delete("/workspaces/:id/keys/:keyId", { schema: { params: z.object({ id: z.string(), keyId: z.string() }) } }, async (req, reply) => {
    if (!isUuid(req.params.id) || !isUuid(req.params.keyId)) throw new NotFoundError("API key");
    await revokeApiKey(deps.db, req.params.id, req.params.keyId);
    return reply.status(204).send();
  });
}
