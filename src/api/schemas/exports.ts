import { z } from "zod";
import { EXPORT_STATUSES, WEBHOOK_STATUSES } from "../../db/schema.js";
import type { RouteDocs } from "../plugins/docs.js";
import { pageOf } from "./common.js";

/** Documentation shape of the export resource (the service builds it; see exportView). */
export const exportObjectSchema = z.object({
  id: z.string(),
  kind: z.enum(["users", "events"]),
  status: z.enum(EXPORT_STATUSES),
  columns: z.array(z.string()),
  filters: z.object({
    segmentId: z.string().optional(),
    conditions: z.unknown().optional(),
    events: z.array(z.string()).optional(),
    from: z.string().optional(),
    to: z.string().optional(),
  }),
  gzip: z.boolean(),
  bom: z.boolean(),
  rowCount: z.number().int().nullable(),
  sizeBytes: z.number().int().nullable(),
  failureReason: z.string().nullable(),
  createdAt: z.string().describe("ISO-8601 UTC"),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  expiresAt: z.string().nullable().describe("after this the file is deleted and the export reads `expired`"),
  callbackUrl: z.string().nullable(),
  webhookStatus: z.enum(WEBHOOK_STATUSES).nullable().describe("latest delivery to callbackUrl: pending, delivered or failed"),
  webhookAttempts: z.number().int(),
  webhookLastError: z.string().nullable(),
});

const json = (s: z.ZodType) => ({ "application/json": s });
export const exportDocs = {
  create: { summary: "Queue a users or events CSV export", responses: { 202: { description: "Accepted; Location names the export", content: json(exportObjectSchema) } } },
  list: { summary: "Exports, newest first", responses: { 200: { description: "A page of exports", content: json(pageOf(exportObjectSchema)) } } },
  get: { summary: "An export", responses: { 200: { description: "The export", content: json(exportObjectSchema) } } },
  download: {
    summary: "Download the finished file (409 while not done, failed or expired)",
    responses: { 200: { description: "The CSV (application/gzip when gzip was asked for)", content: { "text/csv": z.string(), "application/gzip": z.string() } } },
  },
} satisfies Record<string, RouteDocs>;
