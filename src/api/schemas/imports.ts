import { z } from "zod";
import { IMPORT_STATUSES, WEBHOOK_STATUSES } from "../../db/schema.js";
import { IDENTIFIERS, IMPORT_KINDS } from "../../domain/imports/targets.js";
import type { RouteDocs } from "../plugins/docs.js";
import type { importView, summaryView } from "../../domain/imports/service.js";
import { keyedStrings, type SameKeys } from "./common.js";

/** Response shapes of the import resource (the service builds the objects; see importView); they serialise and document it. */
export const importCountsSchema = z.object({
  total: z.number().int(),
  processed: z.number().int(),
  created: z.number().int(),
  updated: z.number().int(),
  unchanged: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int(),
});

export const importRowErrorSchema = z.object({
  row: z.number().int().describe("1-based data row (the header is row 0)"),
  column: z.string().nullable(),
  value: z.string().nullable(),
  code: z.string(),
  message: z.string(),
});

export const importProgressSchema = z.object({
  bytesProcessed: z.number().int().describe("bytes of the file up to the last committed batch, the header included"),
  bytesTotal: z.number().int().describe("size of the file the worker reads (a transcoded upload: its UTF-8 copy)"),
  percent: z.number().describe("0–100, one decimal; 100 once the run went through the whole file"),
  rowsPerSecond: z.number().describe("rows processed per second since the run started (until it finished)"),
  etaSeconds: z.number().int().nullable().describe("seconds left at the byte rate so far; 0 when complete; null when not running or before the first batch"),
});

export const importSummarySchema = z.object({
  id: z.string(),
  kind: z.enum(IMPORT_KINDS),
  status: z.enum(IMPORT_STATUSES),
  filename: z.string().nullable(),
  sizeBytes: z.number().int(),
  encoding: z.string().describe("as uploaded: utf-8, windows-1252, utf-16le or utf-16be, decided from every byte; a file that is none of them cleanly is refused (422 invalid_encoding)"),
  delimiter: z.string(),
  headers: z.array(z.string()),
  sample: z.array(z.array(z.string())),
  suggestedMapping: keyedStrings,
  identifier: z.enum(IDENTIFIERS).nullable(),
  mapping: keyedStrings.nullable().describe("{CSV header: target}"),
  options: z.record(z.string(), z.unknown()).nullable(),
  dryRun: z.boolean(),
  counts: importCountsSchema,
  errorCount: z.number().int(),
  cancelRequested: z.boolean(),
  segmentIds: z.array(z.string()).describe("static segments the import put people in: its segment column's and createSegment's"),
  createdAt: z.string().describe("ISO-8601 UTC"),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  failureReason: z.string().nullable(),
  callbackUrl: z.string().nullable(),
  webhookStatus: z.enum(WEBHOOK_STATUSES).nullable().describe("latest delivery to callbackUrl: pending, delivered or failed"),
  webhookAttempts: z.number().int(),
  webhookLastError: z.string().nullable(),
  uploadExpiredAt: z
    .string()
    .nullable()
    .describe("when the stored upload, its sample rows and the failed rows' cells were deleted (UPLOAD_RETENTION_HOURS, a team-member import's end, an erase); start and validate then answer 409 upload_expired"),
  cellsExpiredAt: z
    .string()
    .nullable()
    .describe("when the sample rows and failed rows' cells were deleted (with the upload; a team-member import's after UPLOAD_RETENTION_HOURS, its file at once); the error report then says the cells expired"),
  template: z
    .object({
      id: z.string(),
      name: z.string(),
      unmatched: z.array(z.string()).describe("columns of the file the template has no entry for: they kept their suggested target"),
    })
    .nullable()
    .describe("the saved mapping the import was created with (`template` on POST /v1/imports); null without one"),
  progress: importProgressSchema
    .nullable()
    .describe("where the latest run stands, from its last committed batch; null before a run starts (draft, queued); a finished, failed or cancelled run keeps its last figures"),
  undo: z
    .object({
      deleted: z.number().int().describe("people the import created, erased"),
      restored: z.number().int().describe("people the import changed or joined to a static segment, put back as they were before it"),
      kept: z
        .number()
        .int()
        .describe("people changed again after the import (fields, or a segment membership it set), or whose earlier identifier someone has taken since, left as they are (each a changed_since_import or restore_conflict error)"),
    })
    .nullable()
    .describe("POST /v1/imports/{id}/undo: what the undo did so far (status undoing, then undone); null when never undone"),
});

export const importObjectSchema = importSummarySchema.extend({
  errors: z.array(importRowErrorSchema).describe("the first 100 row errors; all of them: GET /v1/imports/{id}/errors"),
});

const optionalFields = {
  kind: z.enum(IMPORT_KINDS).optional().describe("default contacts"),
  filename: z.string().max(255).optional(),
  identifier: z.enum(IDENTIFIERS).optional(),
  callbackUrl: z.string().url().optional().describe("http(s) URL POSTed (signed, Roster-Signature) when the import finishes"),
  template: z
    .string()
    .optional()
    .describe("a saved mapping's id or name (GET /v1/mapping-templates): headers matched case-insensitively take its targets, the others keep the suggestion (listed in the import's template.unmatched); its identifier and options apply unless given here; without `kind` the template's kind is the import's; unknown → 422 template_not_found"),
};

/** POST /v1/imports reads its body itself (streamed to storage), so the three accepted shapes are documented here. */
export const createImportBodies: RouteDocs["body"] = {
  "multipart/form-data": z.object({
    file: z.string().meta({ format: "binary" }).describe("the CSV file"),
    ...optionalFields,
    mapping: z.string().optional().describe('JSON object {"CSV header": "target"}, laid over the suggested mapping (columns not named keep their suggested target), or "suggested"'),
    options: z.string().optional().describe("JSON object of import options"),
    start: z.enum(["true", "false"]).optional().describe("true queues the import at once"),
  }),
  "text/csv": z.string().describe("the CSV file as the raw body; other fields go in the query string"),
  "application/json": z.object({
    csv: z.string().describe("pasted CSV text"),
    ...optionalFields,
    mapping: z.union([z.literal("suggested"), z.record(z.string(), z.string())]).optional().describe("laid over the suggested mapping; \"suggested\" takes it as it is"),
    options: z.record(z.string(), z.unknown()).optional(),
    start: z.boolean().optional(),
  }),
};

/** The optional fields may also come as query parameters (the only way with a raw text/csv body). */
export const createImportQuery = z.object({
  kind: z.string().optional().describe("contacts (default), members or events"),
  filename: z.string().optional(),
  identifier: z.string().optional().describe("email, external_id or username"),
  mapping: z.string().optional().describe('JSON object laid over the suggested mapping, or "suggested"'),
  options: z.string().optional().describe("JSON object"),
  start: z.string().optional().describe("true to queue at once"),
  callbackUrl: z.string().optional().describe("http(s) URL to notify when the import finishes"),
  template: z.string().optional().describe("a saved mapping's id or name"),
});

// The service builds these objects; these checks keep the documented field names in step with it.
const _summary: SameKeys<z.output<typeof importSummarySchema>, ReturnType<typeof summaryView>> = true;
const _import: SameKeys<z.output<typeof importObjectSchema>, Awaited<ReturnType<typeof importView>>> = true;
