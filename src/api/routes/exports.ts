import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { EXPORT_STATUSES } from "../../db/schema.js";
import { fingerprint, withIdempotency } from "../../domain/idempotency.js";
import { createExportSchema } from "../../domain/exports/request.js";
import { createExport, exportView, getExport, listExports, openDownload } from "../../domain/exports/service.js";
import { ValidationError } from "../../domain/errors.js";
import { webhookSettings } from "../../domain/webhooks/delivery.js";
import { DEFAULT_LIMIT, MAX_LIMIT } from "../../lib/cursor.js";
import type { AppDeps } from "../app.js";
import { exportDocs } from "../schemas/exports.js";

const idParams = z.object({ id: z.string() });

export async function exportRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "storage" | "producer" | "env">) {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const webhooks = webhookSettings(deps.env);

  app.post("/exports", { schema: { body: createExportSchema }, config: { docs: exportDocs.create } }, async (req, reply) => {
    if (req.body.callbackUrl && !webhooks.signingKey) {
      throw new ValidationError("webhooks_disabled", "This server does not send webhooks (WEBHOOK_SIGNING_KEY is not set); leave callbackUrl out.");
    }
    const idemKey = req.headers["idempotency-key"];
    const hash = fingerprint({ route: "POST /v1/exports", ...req.body });
    const res = await withIdempotency(deps.db, req.workspaceId, typeof idemKey === "string" ? idemKey : undefined, hash, async () => {
      const row = await createExport(deps.db, deps.producer, req.workspaceId, req.body);
      return { statusCode: 202, body: exportView(row) };
    });
    const body = res.body as { id: string };
    return reply.status(res.statusCode).header("location", `/v1/exports/${body.id}`).send(body);
  });

  app.get(
    "/exports",
    {
      schema: {
        querystring: z.object({
          status: z.enum(EXPORT_STATUSES).optional(),
          limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
          cursor: z.string().optional(),
        }),
      },
      config: { docs: exportDocs.list },
    },
    async (req) => listExports(deps.db, req.workspaceId, req.query),
  );

  app.get("/exports/:id", { schema: { params: idParams }, config: { docs: exportDocs.get } }, async (req) => exportView(await getExport(deps.db, req.workspaceId, req.params.id)));

  app.get("/exports/:id/download", { schema: { params: idParams }, config: { docs: exportDocs.download } }, async (req, reply) => {
    const file = await openDownload(deps.db, deps.storage, req.workspaceId, req.params.id);
    return reply
      .header("content-type", file.contentType)
      .header("content-length", file.sizeBytes)
      .header("content-disposition", `attachment; filename="${file.filename}"`)
      .send(file.stream);
  });
}
