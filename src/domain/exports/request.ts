/** What a client may ask an export for, checked once at the API so the worker only ever sees valid params. */
import { z } from "zod";
import { ValidationError } from "../errors.js";
import { parseDate } from "../imports/values.js";
import { callbackUrlSchema } from "../webhooks/callback-url.js";
import { DEFAULT_EVENT_COLUMNS, DEFAULT_USER_COLUMNS, eventColumnProblem, userColumnProblem } from "./columns.js";

export const EXPORT_KINDS = ["users", "events"] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

const MAX_COLUMNS = 200;
const MAX_EVENT_NAMES = 100;

/**
 * An ISO-8601 instant, or the offset-less and date-only ISO forms imports accept (read as UTC; a date alone is its
 * midnight). The other import forms (MM/DD/YYYY, DD.MM.YYYY, epoch numbers) stay out: in an API they are ambiguous.
 */
const ISO_DATE_START = /^\d{4}-\d{2}-\d{2}(?![\d])/;
const parseInstant = (raw: string): Date | null => (ISO_DATE_START.test(raw.trim()) ? parseDate(raw) : null);
const timestamp = z
  .string()
  .refine((v) => parseInstant(v) !== null, { error: "Use an ISO-8601 date or timestamp such as 2026-01-31 or 2026-01-31T00:00:00Z." });

/** The POST /v1/exports body. `bom` is an extension to API.md: a UTF-8 byte order mark for spreadsheet users. */
export const createExportSchema = z.strictObject({
  kind: z.enum(EXPORT_KINDS, { error: 'Use "users" or "events".' }),
  columns: z
    .array(z.string().min(1).max(200))
    .min(1)
    .max(MAX_COLUMNS)
    .optional()
    .describe(
      "Columns in file order. users: id, email, external_id, username, first_name, last_name, name, company_id, created_at, updated_at, " +
        "last_seen_at, labels, segments, attributes.<key> (default: email, external_id, username, first_name, last_name, name, company_id, labels). " +
        "events: occurred_at, event, user_id, external_id, email, properties (default: all).",
    ),
  segmentId: z.string().optional().describe("users only: export the members of this segment."),
  conditions: z.unknown().optional().describe("users only: export the people matching this condition tree (the segment condition language)."),
  events: z.array(z.string().min(1).max(255)).min(1).max(MAX_EVENT_NAMES).optional().describe("events only: these event names (default: all)."),
  from: timestamp.optional().describe("events only: occurred at or after this instant (inclusive). A date alone (2026-01-31) is its midnight UTC."),
  to: timestamp.optional().describe("events only: occurred before this instant (exclusive). A date alone (2026-02-01) is its midnight UTC."),
  gzip: z.boolean().default(false).describe("Gzip the file (.csv.gz, application/gzip)."),
  bom: z.boolean().default(false).describe("Extension to API.md: start the file with a UTF-8 byte order mark, so spreadsheets read it as UTF-8."),
  callbackUrl: callbackUrlSchema
    .optional()
    .describe("http(s) URL POSTed (signed, Roster-Signature) when the export ends done or failed; refused (422 webhooks_disabled) when the server has no WEBHOOK_SIGNING_KEY."),
});
export type CreateExportRequest = z.output<typeof createExportSchema>;

/** The checked request as stored on the export (exports.params): everything the worker needs, nothing else (callbackUrl is a column). */
export interface ExportParams {
  columns: string[];
  segmentId: string | null;
  conditions: unknown;
  events: string[] | null;
  /** ISO-8601 UTC, from inclusive, to exclusive. */
  from: string | null;
  to: string | null;
  gzip: boolean;
  bom: boolean;
}

interface Problem {
  field: string;
  reason: string;
}

/**
 * Checks what the schema cannot: fields that belong to the other kind, columns, the date range. Every problem is
 * reported at once. `conditions` is handed to `checkConditions` (the segment condition language) afterwards.
 */
export function checkExportRequest(req: CreateExportRequest, checkConditions: (raw: unknown) => unknown): ExportParams {
  const problems: Problem[] = [];
  const notFor = (field: keyof CreateExportRequest, kind: ExportKind) => {
    if (req[field] !== undefined) problems.push({ field, reason: `Only for ${kind === "users" ? "events" : "users"} exports, not ${kind}.` });
  };
  if (req.kind === "users") for (const f of ["events", "from", "to"] as const) notFor(f, "users");
  else for (const f of ["segmentId", "conditions"] as const) notFor(f, "events");

  const columns = req.columns ?? [...(req.kind === "users" ? DEFAULT_USER_COLUMNS : DEFAULT_EVENT_COLUMNS)];
  const problemOf = req.kind === "users" ? userColumnProblem : eventColumnProblem;
  const seen = new Set<string>();
  columns.forEach((column, i) => {
    const reason = seen.has(column) ? `"${column}" is listed twice.` : problemOf(column);
    if (reason) problems.push({ field: `columns.${i}`, reason });
    seen.add(column);
  });

  const from = req.from ? parseInstant(req.from) : null;
  const to = req.to ? parseInstant(req.to) : null;
  if (from && to && from >= to) problems.push({ field: "to", reason: "Must be later than from (from is inclusive, to exclusive)." });

  if (problems.length > 0) {
    const unknown = problems.filter((p) => p.field.startsWith("columns."));
    const message =
      problems.length === 1 && unknown.length === 1 ? unknown[0]!.reason : `The export request has ${problems.length} problem${problems.length === 1 ? "" : "s"}.`;
    throw new ValidationError("invalid_export", message, { problems });
  }
  const conditions = req.conditions === undefined ? null : checkConditions(req.conditions);
  return {
    columns,
    segmentId: req.segmentId ?? null,
    conditions,
    events: req.events ? [...new Set(req.events)] : null,
    from: from?.toISOString() ?? null,
    to: to?.toISOString() ?? null,
    gzip: req.gzip,
    bom: req.bom,
  };
}
