import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ValidationError } from "../../domain/errors.js";
import { IMPORT_KINDS } from "../../domain/imports/targets.js";
import { createTemplate, createTemplateFromImport, deleteTemplate, getTemplate, listTemplates, templateView, updateTemplate } from "../../domain/mapping-templates/service.js";
import type { AppDeps } from "../app.js";
import { errorResponse, errorResponses, noContent, pageOf, pageQuery } from "../schemas/common.js";
import { createTemplateBody, templateSchema, updateTemplateBody } from "../schemas/mapping-templates.js";

const idParams = z.object({ id: z.string() });
const listQuery = pageQuery.extend({ kind: z.enum(IMPORT_KINDS).optional() });
const theTemplate = (description: string) => ({ 200: templateSchema.describe(description) });

/** Saved mappings ("mapping templates"), applied by `template` on POST /v1/imports. */
export async function mappingTemplateRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db">) {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.post(
    "/mapping-templates",
    {
      schema: {
        body: createTemplateBody,
        response: { 201: templateSchema.describe("The template; Location names it"), 409: errorResponse("template_name_taken: a template of this kind has that name") },
      },
      config: {
        docs: {
          summary: "Save a mapping under a name",
          description:
            "Either `{name, kind?, identifier, mapping, options?}` or `{name, importId}` (the import's current mapping). The mapping is checked as an import's would be (422 invalid_mapping with problems); a name already used by a template of the same kind → 409 template_name_taken.",
        },
        idempotent: { location: (body) => `/v1/mapping-templates/${body.id}` },
      },
    },
    async (req, reply) => {
      const { name, importId, ...given } = req.body;
      reply.status(201);
      if (importId !== undefined) {
        if (Object.values(given).some((v) => v !== undefined)) {
          throw new ValidationError("invalid_request", "Send either importId or kind, identifier, mapping and options, not both.");
        }
        return templateView(await createTemplateFromImport(deps.db, req.workspaceId, name, importId));
      }
      if (given.identifier === undefined || given.mapping === undefined) {
        throw new ValidationError("invalid_request", "Send identifier and mapping (or importId to save an import's mapping).", {
          problems: [
            ...(given.identifier === undefined ? [{ field: "body.identifier", reason: "is required" }] : []),
            ...(given.mapping === undefined ? [{ field: "body.mapping", reason: "is required" }] : []),
          ],
        });
      }
      const row = await createTemplate(deps.db, req.workspaceId, { name, kind: given.kind ?? "contacts", identifier: given.identifier, mapping: given.mapping, options: given.options });
      return templateView(row);
    },
  );

  app.get(
    "/mapping-templates",
    { schema: { querystring: listQuery, response: { 200: pageOf(templateSchema).describe("A page of templates") } }, config: { docs: { summary: "Saved mappings, newest first" } } },
    async (req) => listTemplates(deps.db, req.workspaceId, req.query),
  );

  app.get("/mapping-templates/:id", { schema: { params: idParams, response: theTemplate("The template") }, config: { docs: { summary: "A saved mapping" } } }, async (req) =>
    templateView(await getTemplate(deps.db, req.workspaceId, req.params.id)),
  );

  app.put(
    "/mapping-templates/:id",
    { schema: { params: idParams, body: updateTemplateBody, response: { ...theTemplate("The template"), ...errorResponses(409) } }, config: { docs: { summary: "Change a saved mapping (fields left out keep their value)" } } },
    async (req) => templateView(await updateTemplate(deps.db, req.workspaceId, req.params.id, req.body)),
  );

  app.delete(
    "/mapping-templates/:id",
    { schema: { params: idParams, response: { 204: noContent("Deleted") } }, config: { docs: { summary: "Delete a saved mapping (imports made with it keep their mapping)" } } },
    async (req, reply) => {
      await deleteTemplate(deps.db, req.workspaceId, req.params.id);
      return reply.status(204).send();
    },
  );
}
