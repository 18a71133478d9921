import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { DELETION_STATUSES } from "../../db/schema.js";
import { eraseUser } from "../../domain/deletions/copies.js";
import { createDeletion, createDeletionSchema, deletionView, getDeletion, listDeletions } from "../../domain/deletions/service.js";
import { fingerprint, withIdempotency } from "../../domain/idempotency.js";
import { DEFAULT_LIMIT, MAX_LIMIT } from "../../lib/cursor.js";
import type { Logger } from "../../lib/logger.js";
import type { AppDeps } from "../app.js";
import { deletionDocs } from "../schemas/deletions.js";

const idParams = z.object({ id: z.string() });

/** Erasing people: one at once (DELETE /users/:id) or many as a job (deletions). */
export async function deletionRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "storage" | "producer" | "env">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.delete("/users/:id", { schema: { params: idParams }, config: { docs: deletionDocs.eraseUser } }, async (req, reply) => {
    await eraseUser({ db: deps.db, storage: deps.storage, log: req.log as Logger, draftRetentionHours: deps.env.DRAFT_RETENTION_HOURS }, req.workspaceId, req.params.id);
    return reply.status(204).send();
  });

  app.post("/deletions", { schema: { body: createDeletionSchema }, config: { docs: deletionDocs.create } }, async (req, reply) => {
    const idemKey = req.headers["idempotency-key"];
    const res = await withIdempotency(deps.db, req.workspaceId, typeof idemKey === "string" ? idemKey : undefined, fingerprint({ route: "POST /v1/deletions", ...req.body }), async () => ({
      statusCode: 202,
      body: deletionView(await createDeletion(deps.db, deps.producer, req.workspaceId, req.body)),
    }));
    const body = res.body as { id: string };
    return reply.status(res.statusCode).header("location", `/v1/deletions/${body.id}`).send(body);
  });

  app.get(
    "/deletions",
    {
      schema: {
        querystring: z.object({
          status: z.enum(DELETION_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
          cursor: z.string().optional(),
        }),
      },
      config: { docs: deletionDocs.list },
    },
    async (req) => listDeletions(deps.db, req.workspaceId, req.query),
  );

  app.get("/deletions/:id", { schema: { params: idParams }, config: { docs: deletionDocs.get } }, async (req) => deletionView(await getDeletion(deps.db, req.workspaceId, req.params.id)));
}
