import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { createLabel, deleteLabel, listLabels, mergeLabel, renameLabel } from "../../domain/labels/service.js";
import type { AppDeps } from "../app.js";
import { errorResponse, noContent, pageOf, pageQuery } from "../schemas/common.js";
import { createLabelBody, labelSchema, mergeLabelBody, renameLabelBody } from "../schemas/labels.js";

const idParams = z.object({ id: z.string() });
const taken = errorResponse("label_name_taken: the workspace has a label of that name (names are case-sensitive)");
const RECOMPUTE = "Dynamic segments name labels in their conditions: the workspace's dynamic segments are recomputed so memberships follow.";

/** Labels: list with people counts, create, rename, delete, merge one into another. */
export async function labelRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "producer">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.get(
    "/labels",
    { schema: { querystring: pageQuery, response: { 200: pageOf(labelSchema).describe("A page of labels, by id") } }, config: { docs: { summary: "Labels, by id, each with how many people hold it" } } },
    async (req) => listLabels(deps.db, req.workspaceId, req.query),
  );

  app.post(
    "/labels",
    {
      schema: { body: createLabelBody, response: { 201: labelSchema.describe("The label; Location names it"), 409: taken } },
      config: {
        docs: { summary: "Create a label", description: "A name the workspace already has → 409 `label_name_taken` (names are case-sensitive)." },
        idempotent: { location: (body) => `/v1/labels/${body.id}` },
      },
    },
    async (req, reply) => {
      reply.status(201);
      return createLabel(deps.db, req.workspaceId, req.body.name);
    },
  );

  app.patch(
    "/labels/:id",
    {
      schema: { params: idParams, body: renameLabelBody, response: { 200: labelSchema.describe("The label"), 409: taken } },
      config: { docs: { summary: "Rename a label", description: `People keep the label. A name another label has → 409 \`label_name_taken\`. ${RECOMPUTE}` } },
    },
    async (req) => renameLabel(deps.db, deps.producer, req.workspaceId, req.params.id, req.body.name),
  );

  app.delete(
    "/labels/:id",
    {
      schema: { params: idParams, response: { 204: noContent("Deleted, with every person's link to it") } },
      config: { docs: { summary: "Delete a label", description: `Every person holding the label loses it, in the same transaction. ${RECOMPUTE}` } },
    },
    async (req, reply) => {
      await deleteLabel(deps.db, deps.producer, req.workspaceId, req.params.id);
      return reply.status(204).send();
    },
  );

  app.post(
    "/labels/:id/merge",
    {
      schema: {
        params: idParams,
        body: mergeLabelBody,
        response: { 200: labelSchema.describe("The label merged into (`into`), with its new people count"), 422: errorResponse("label_merge_into_itself, or an invalid body") },
      },
      config: {
        docs: {
          summary: "Merge a label into another",
          description: `People holding label :id hold \`into\` (once) instead; label :id is then deleted. \`into\` equal to :id → 422 \`label_merge_into_itself\`; an \`into\` the workspace has no label with → 404. ${RECOMPUTE}`,
        },
      },
    },
    async (req) => mergeLabel(deps.db, deps.producer, req.workspaceId, req.params.id, String(req.body.into)),
  );
}
