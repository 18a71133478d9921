import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { EXPORT_STATUSES } from "../../db/schema.js";
import { createExportSchema } from "../../domain/exports/request.js";
import { createExport, exportView, getExport, listExports, openDownload } from "../../domain/exports/service.js";
import { ValidationError } from "../../domain/errors.js";
import { webhookSettings } from "../../domain/webhooks/delivery.js";
import type { AppDeps } from "../app.js";
import { errorResponses, pageOf, pageQuery, textResponse } from "../schemas/common.js";
import { exportObjectSchema } from "../schemas/exports.js";

const idParams = z.object({ id: z.string() });

export async function exportRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "storage" | "producer" | "env">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const webhooks = webhookSettings(deps.env);

  app.post(
    "/exports",
    {
      schema: { body: createExportSchema, response: { 202: exportObjectSchema.describe("Accepted; Location names the export"), ...errorResponses(404) } },
      config: { docs: { summary: "Queue a users or events CSV export" }, idempotent: { location: (body) => `/v1/exports/${body.id}` } },
    },
    async (req, reply) => {
      if (req.body.callbackUrl && !webhooks.signingKey) {
        throw new ValidationError("webhooks_disabled", "This server does not send webhooks (WEBHOOK_SIGNING_KEY is not set); leave callbackUrl out.");
      }
      const row = await createExport(deps.db, deps.producer, req.workspaceId, req.body);
      reply.status(202);
      return exportView(row);
    },
  );

  app.get(
    "/exports",
    {
      schema: { querystring: pageQuery.extend({ status: z.enum(EXPORT_STATUSES).optional() }), response: { 200: pageOf(exportObjectSchema).describe("A page of exports") } },
      config: { docs: { summary: "Exports, newest first" } },
    },
    async (req) => listExports(deps.db, req.workspaceId, req.query),
  );

  app.get(
    "/exports/:id",
    { schema: { params: idParams, response: { 200: exportObjectSchema.describe("The export") } }, config: { docs: { summary: "An export" } } },
    async (req) => exportView(await getExport(deps.db, req.workspaceId, req.params.id)),
  );

  app.get(
    "/exports/:id/download",
    {
      schema: {
        params: idParams,
        // A streamed file: documented per media type, never serialised.
        response: { 200: textResponse("The CSV (application/gzip when gzip was asked for)", "text/csv", "application/gzip"), ...errorResponses(409) },
      },
      config: { docs: { summary: "Download the finished file (409 while not done, failed or expired)" } },
    },
    async (req, reply) => {
      const file = await openDownload(deps.db, deps.storage, req.workspaceId, req.params.id);
      return reply
        .header("content-type", file.contentType)
        .header("content-length", file.sizeBytes)
        .header("content-disposition", `attachment; filename="${file.filename}"`)
        .send(file.stream);
    },
  );
}
