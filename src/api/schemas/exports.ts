import { z } from "zod";
import { EXPORT_STATUSES, WEBHOOK_STATUSES } from "../../db/schema.js";
import type { exportView } from "../../domain/exports/service.js";
import type { SameKeys } from "./common.js";

/** Response shape of the export resource (the service builds it; see exportView); it serialises and documents it. */
export const exportObjectSchema = z.object({
  id: z.string(),
  kind: z.enum(["users", "events"]),
  status: z.enum(EXPORT_STATUSES),
  columns: z.array(z.string()),
  filters: z.object({
    segmentId: z.string().nullable(),
    conditions: z.unknown().meta({ type: "object", additionalProperties: true, nullable: true, description: "the condition tree, or null" }),
    events: z.array(z.string()).nullable(),
    from: z.string().nullable().describe("ISO-8601 UTC, inclusive"),
    to: z.string().nullable().describe("ISO-8601 UTC, exclusive"),
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

// The service builds this object; this check keeps the documented field names in step with it.
const _export: SameKeys<z.output<typeof exportObjectSchema>, ReturnType<typeof exportView>> = true;
