import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { DELETION_STATUSES } from "../../db/schema.js";
import { eraseUser } from "../../domain/deletions/copies.js";
import { createDeletion, createDeletionSchema, deletionView, getDeletion, listDeletions } from "../../domain/deletions/service.js";
import type { Logger } from "../../lib/logger.js";
import type { AppDeps } from "../app.js";
import { errorResponses, noContent, pageOf, pageQuery } from "../schemas/common.js";
import { deletionDocs, deletionObjectSchema } from "../schemas/deletions.js";

const idParams = z.object({ id: z.string() });

/** Erasing people: one at once (DELETE /users/:id) or many as a job (deletions). */
export async function deletionRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "storage" | "producer" | "env">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.delete(
    "/users/:id",
    { schema: { params: idParams, response: { 204: noContent("Erased") } }, config: { docs: deletionDocs.eraseUser } },
    async (req, reply) => {
      await eraseUser({ db: deps.db, storage: deps.storage, log: req.log as Logger, draftRetentionHours: deps.env.DRAFT_RETENTION_HOURS }, req.workspaceId, req.params.id);
      return reply.status(204).send();
    },
  );

  app.post(
    "/deletions",
    {
      schema: { body: createDeletionSchema, response: { 202: deletionObjectSchema.describe("Accepted; Location names the deletion"), ...errorResponses(404) } },
      config: { docs: deletionDocs.create, idempotent: { location: (body) => `/v1/deletions/${body.id}` } },
    },
    async (req, reply) => {
      reply.status(202);
      return deletionView(await createDeletion(deps.db, deps.producer, req.workspaceId, req.body));
    },
  );

  app.get(
    "/deletions",
    {
      schema: { querystring: pageQuery.extend({ status: z.enum(DELETION_STATUSES).optional() }), response: { 200: pageOf(deletionObjectSchema).describe("A page of deletions") } },
      config: { docs: deletionDocs.list },
    },
    async (req) => listDeletions(deps.db, req.workspaceId, req.query),
  );

  app.get(
    "/deletions/:id",
    { schema: { params: idParams, response: { 200: deletionObjectSchema.describe("The deletion") } }, config: { docs: deletionDocs.get } },
    async (req) => deletionView(await getDeletion(deps.db, req.workspaceId, req.params.id)),
  );
}
