import { Readable } from "node:stream";
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { IMPORT_STATUSES } from "../../db/schema.js";
import { BadRequestError, DomainError, PayloadTooLargeError, UnsupportedMediaError, ValidationError } from "../../domain/errors.js";
import { streamImportErrors } from "../../domain/imports/errors-csv.js";
import { expireUploadAtEnd } from "../../domain/retention/uploads.js";
import { createImportFromUpload, storeUpload, type StoredUpload } from "../../domain/imports/intake.js";
import { importKindSchema, mappingFieldSchema, mappingRequestSchema } from "../../domain/imports/mapping.js";
import { enqueueNewImport } from "../../domain/imports/lifecycle.js";
import { requestUndo } from "../../domain/imports/undo.js";
import { cancelImport, getImport, importView, listImports, requestRun, setMapping } from "../../domain/imports/service.js";
import { callbackUrlSchema } from "../../domain/webhooks/callback-url.js";
import { queueWebhook, webhookSettings, type WebhookSettings } from "../../domain/webhooks/delivery.js";
import type { AppDeps } from "../app.js";
import { guardUploadIdle, type IdleGuard } from "../upload-idle.js";
import { errorResponse, errorResponses, pageOf, pageQuery, textResponse } from "../schemas/common.js";
import { createImportBodies, createImportQuery, importObjectSchema, importSummarySchema } from "../schemas/imports.js";

/** Multipart bounds: one file, a handful of small fields; anything more is refused with 413. */
const MULTIPART_LIMITS = { files: 1, parts: 12, fields: 10, fieldSize: 1024 * 1024 };
const RAW_CSV_TYPES = ["text/csv", "text/plain", "application/csv", "application/octet-stream"];

const idParams = z.object({ id: z.string() });
const fieldsSchema = z.object({
  kind: importKindSchema.default("contacts"),
  // Postgres text cannot hold NUL, and no file name needs a control character.
  filename: z.string().max(255).regex(/^\P{Cc}*$/u, "must not contain a NUL or other control character").optional(),
  identifier: z.string().optional(),
  mapping: mappingFieldSchema.optional(),
  options: z.unknown().optional(),
  start: z.boolean().default(false),
  callbackUrl: callbackUrlSchema.optional(),
  template: z.string().min(1).max(200).optional(),
});
type Fields = z.infer<typeof fieldsSchema>;

/** Multipart fields and query strings carry JSON as text; JSON bodies carry it as JSON. */
function parseFields(raw: Record<string, unknown>): Fields {
  const norm: Record<string, unknown> = { ...raw };
  for (const k of ["mapping", "options"]) {
    // The one bare word a text field may hold: mapping=suggested (JSON text "\"suggested\"" works as well).
    if (typeof norm[k] === "string" && !(k === "mapping" && norm[k] === "suggested")) {
      try {
        norm[k] = JSON.parse(norm[k] as string);
      } catch {
        throw new ValidationError("invalid_request", `The ${k} field is not valid JSON.`, { problems: [{ field: k, reason: "is not valid JSON" }] });
      }
    }
  }
  if (typeof norm.start === "string") norm.start = norm.start === "true" || norm.start === "1";
  const parsed = fieldsSchema.safeParse(norm);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({ field: i.path.join("."), reason: i.message }));
    throw new ValidationError("invalid_request", "The import request is invalid.", { problems });
  }
  return parsed.data;
}

/**
 * busboy's parse errors (no boundary, a body cut before the closing boundary, a malformed part header) are plain
 * Errors without a code: the request is malformed (400), not the server. Anything with a code (limits, storage,
 * sockets) or a DomainError is left as it is.
 */
function malformedMultipart(err: unknown): BadRequestError | null {
  if (!(err instanceof Error) || err instanceof DomainError || (err as { code?: unknown }).code !== undefined) return null;
  return new BadRequestError("malformed_multipart", `The multipart body cannot be read: ${err.message}. Send multipart/form-data with a boundary and the whole body.`);
}

export async function importRoutes(base: FastifyInstance, deps: Pick<AppDeps, "db" | "storage" | "producer" | "env" | "logger">) {
  const webhooks: WebhookSettings = webhookSettings(deps.env);
  const app = base.withTypeProvider<ZodTypeProvider>();
  await app.register(multipart, { limits: { ...MULTIPART_LIMITS, fileSize: deps.env.UPLOAD_MAX_BYTES } });
  // Raw CSV bodies are streamed to storage, not parsed into memory.
  app.addContentTypeParser(RAW_CSV_TYPES, (_req, payload, done) => done(null, payload));

  /**
   * Reads the upload, guarded against a body that stalls (UPLOAD_IDLE_TIMEOUT_MS). A body that could not be read to
   * its end closes the connection after the answer: what is left of it cannot be told from a next request.
   */
  async function receive(req: FastifyRequest, reply: FastifyReply): Promise<{ upload: StoredUpload; fields: Record<string, unknown> }> {
    const guard = guardUploadIdle(req.raw, deps.env.UPLOAD_IDLE_TIMEOUT_MS);
    try {
      return await receiveBody(req, guard);
    } catch (err) {
      if (!req.raw.complete) reply.header("connection", "close");
      throw err;
    } finally {
      guard.stop();
    }
  }

  /** Reads the upload from whichever body shape the client chose, storing the file as it arrives. */
  async function receiveBody(req: FastifyRequest, guard: IdleGuard): Promise<{ upload: StoredUpload; fields: Record<string, unknown> }> {
    const max = deps.env.UPLOAD_MAX_BYTES;
    const query = { ...(req.query as Record<string, unknown>) };
    if (req.isMultipart()) {
      const fields: Record<string, unknown> = { ...query };
      let upload: StoredUpload | null = null;
      try {
        for await (const part of req.parts()) {
          if (part.type === "file") {
            if (part.fieldname !== "file" || upload) {
              part.file.resume();
              continue;
            }
            fields.filename ??= part.filename;
            const stored = await storeUpload(deps.storage, req.workspaceId, part.file, max);
            if (part.file.truncated) {
              await deps.storage.delete(stored.key);
              throw new PayloadTooLargeError(max);
            }
            upload = stored;
          } else {
            fields[part.fieldname] = part.value;
          }
        }
      } catch (err) {
        // A part after the file broke a limit (too many parts, a second file): the stored file is not kept.
        if (upload) await deps.storage.delete(upload.key);
        throw malformedMultipart(err) ?? err;
      }
      if (!upload) throw new ValidationError("file_required", "Send the CSV in a multipart part named 'file'.");
      return { upload, fields };
    }
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type === "application/json") {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body.csv !== "string") throw new ValidationError("csv_required", "Send the pasted CSV text as the 'csv' field.");
      const { csv, ...rest } = body;
      const upload = await storeUpload(deps.storage, req.workspaceId, Buffer.from(csv, "utf8"), max);
      return { upload, fields: { ...query, ...rest } };
    }
    if (RAW_CSV_TYPES.includes(type)) {
      const upload = await storeUpload(deps.storage, req.workspaceId, guard.watch(req.body as Readable), max);
      return { upload, fields: query };
    }
    throw new UnsupportedMediaError("unsupported_media_type", "Send multipart/form-data with a 'file' part, a text/csv body, or JSON {\"csv\": \"…\"}.");
  }

  /** What the preHandler received for POST /v1/imports; the upload is the import's once the handler used it. */
  const intakes = new WeakMap<FastifyRequest, { upload: StoredUpload; fields?: Fields; used: boolean; kindGiven?: boolean }>();
  const intakeOf = (req: FastifyRequest) => intakes.get(req)!;
  const importLocation = (body: { id: string }) => `/v1/imports/${body.id}`;

  app.post(
    "/imports",
    {
      schema: {
        querystring: createImportQuery,
        response: {
          201: importObjectSchema.describe("The import (draft, or queued when started)"),
          400: errorResponse("malformed_multipart: no boundary, or the body ends before its closing boundary; invalid_json"),
          408: errorResponse("request_timeout: the upload stalled for UPLOAD_IDLE_TIMEOUT_MS; nothing was kept"),
          ...errorResponses(413, 415),
          507: errorResponse("insufficient_storage: no room to store the upload; nothing was kept"),
        },
      },
      config: {
        docs: { summary: "Upload a CSV (multipart, raw text/csv, or pasted JSON) and create an import", body: createImportBodies },
        // The same fields and the same file (by its SHA-256) make the same request.
        idempotent: { location: importLocation, request: (req) => ({ ...intakeOf(req).fields, file: intakeOf(req).upload.sha256 }) },
      },
      // The body is read before the idempotency check, which needs the file's hash.
      preHandler: async (req, reply) => {
        const { upload, fields } = await receive(req, reply);
        // Whether the request named a kind: without one, a template's kind is the import's.
        const intake: { upload: StoredUpload; fields?: Fields; used: boolean; kindGiven?: boolean } = { upload, used: false, kindGiven: fields.kind !== undefined };
        intakes.set(req, intake);
        intake.fields = parseFields(fields);
        if (intake.fields.callbackUrl && !webhooks.signingKey) {
          throw new ValidationError("webhooks_disabled", "This server does not send webhooks (WEBHOOK_SIGNING_KEY is not set); leave callbackUrl out.");
        }
      },
      // A stored file no import took (a refused request, a replay) is deleted before the answer leaves.
      onSend: async (req) => {
        const intake = intakes.get(req);
        if (intake && !intake.used) await deps.storage.delete(intake.upload.key);
      },
    },
    async (req, reply) => {
      const intake = intakeOf(req);
      const fields = intake.fields!;
      intake.used = true;
      // With start, the import is inserted already queued (one statement) and its job enqueued right after: the file
      // is stored (fsynced) before the row exists, and the row exists before the job.
      const row = await createImportFromUpload(deps.db, deps.storage, req.workspaceId, intake.upload, {
        kind: fields.kind,
        filename: fields.filename ?? null,
        identifier: fields.identifier,
        mapping: fields.mapping,
        options: fields.options,
        callbackUrl: fields.callbackUrl ?? null,
        start: fields.start,
        ...(fields.template ? { template: { ref: fields.template, kindGiven: intake.kindGiven === true } } : {}),
      });
      if (fields.start) await enqueueNewImport(deps.db, deps.storage, deps.producer, row);
      reply.status(201);
      // A new import has no errors: the view is built from the inserted row, nothing is read back.
      return importView(deps.db, row);
    },
  );

  const theImport = (description: string) => ({ 200: importObjectSchema.describe(description) });
  const accepted = { 202: importObjectSchema.describe("Accepted; Location names the import"), ...errorResponses(409) };

  app.get(
    "/imports",
    {
      schema: { querystring: pageQuery.extend({ status: z.enum(IMPORT_STATUSES).optional() }), response: { 200: pageOf(importSummarySchema).describe("A page of imports") } },
      config: { docs: { summary: "Import history, newest first" } },
    },
    async (req) => listImports(deps.db, req.workspaceId, req.query),
  );

  app.get("/imports/:id", { schema: { params: idParams, response: theImport("The import") }, config: { docs: { summary: "An import" } } }, async (req) =>
    importView(deps.db, await getImport(deps.db, req.workspaceId, req.params.id)),
  );

  app.put(
    "/imports/:id/mapping",
    { schema: { params: idParams, body: mappingRequestSchema, response: { ...theImport("The import"), ...errorResponses(409) } }, config: { docs: { summary: "Set identifier, mapping and options" } } },
    async (req) => {
      const row = await setMapping(deps.db, req.workspaceId, req.params.id, req.body);
      return importView(deps.db, row);
    },
  );

  for (const [action, dryRun] of [["validate", true], ["start", false]] as const) {
    const summary = dryRun ? "Dry run: validate every row, write nothing (status validating)" : "Queue the import (status queued, counts from zero)";
    app.post(`/imports/:id/${action}`, { schema: { params: idParams, response: accepted }, config: { docs: { summary, location: [202] } } }, async (req, reply) => {
      const row = await requestRun(deps.db, deps.producer, req.workspaceId, req.params.id, dryRun);
      return reply.status(202).header("location", importLocation(row)).send(await importView(deps.db, row));
    });
  }

  app.post("/imports/:id/cancel", { schema: { params: idParams, response: accepted }, config: { docs: { summary: "Cancel; committed rows stay", location: [202] } } }, async (req, reply) => {
    let row = await cancelImport(deps.db, req.workspaceId, req.params.id);
    // Cancelled before any run: a team-member upload (or any, with UPLOAD_RETENTION_HOURS=0) goes now.
    if (row.status === "cancelled" && (await expireUploadAtEnd({ ...deps, uploadRetentionHours: deps.env.UPLOAD_RETENTION_HOURS }, row.id))) {
      row = await getImport(deps.db, req.workspaceId, row.id);
    }
    if (row.status === "cancelled" && row.callbackUrl) {
      // Cancelled before any run: no worker will finish it, so the webhook is queued here.
      await queueWebhook({ ...deps, log: deps.logger, settings: webhooks }, { workspaceId: req.workspaceId, resource: "import", id: row.id });
      row = await getImport(deps.db, req.workspaceId, row.id);
    }
    return reply.status(202).header("location", importLocation(row)).send(await importView(deps.db, row));
  });

  app.post(
    "/imports/:id/undo",
    {
      schema: { params: idParams, response: { 202: importObjectSchema.describe("Accepted: the import is undoing; Location names it"), 409: errorResponse("not_undoable: the import is a draft, queued, validating, processing, validated, undoing or undone"), 422: errorResponse("not_undoable_kind: a members or events import") } },
      config: {
        docs: {
          summary: "Undo a contacts import: erase the people it created, restore the people it changed and the static segments it joined them to",
          location: [202],
          description:
            "For a contacts import that is done, failed or cancelled: status `undoing`, then `undone` with `undo: {deleted, restored, kept}`. People it created are erased; people it changed get their fields, attributes and labels back; the static-segment joins it made (a `segment` column or `createSegment`) are removed, or the membership value it replaced is put back. People changed again since the import finished (their fields, a membership it set, a new event or static-segment membership) are kept as they are, each listed in the error report with code `changed_since_import`; people whose earlier email, external id or username someone has taken since are kept with `restore_conflict`. 409 `not_undoable` for any other status; 422 `not_undoable_kind` for members and events imports.",
        },
      },
    },
    async (req, reply) => {
      const row = await requestUndo(deps.db, deps.producer, req.workspaceId, req.params.id);
      return reply.status(202).header("location", importLocation(row)).send(await importView(deps.db, row));
    },
  );

  app.get(
    "/imports/:id/errors",
    { schema: { params: idParams, response: { 200: textResponse("row,column,value,code,message, then the failed row's own cells", "text/csv") } }, config: {
        docs: {
          summary: "Every row error as CSV",
          description:
            "After the cells expired (cellsExpiredAt) the report still lists row, column, code and message; value and the row's cells are empty and the message ends with \"(cells expired with the upload)\".",
        },
      },
    },
    async (req, reply) => {
      const { filename, stream } = await streamImportErrors(deps.db, req.workspaceId, req.params.id);
      return reply
        .header("content-type", "text/csv; charset=utf-8")
        .header("content-disposition", `attachment; filename="${filename}"`)
        .send(stream);
    },
  );
}
