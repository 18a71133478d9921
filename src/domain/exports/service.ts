import type { Readable } from "node:stream";
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { exports, segments, type ExportStatus } from "../../db/schema.js";
import { isUuid } from "../../lib/uuid.js";
import type { Producer } from "../../queue/producer.js";
import type { Storage } from "../../storage/storage.js";
import { ConflictError, NotFoundError } from "../errors.js";
import { checkConditions, conditionSegments } from "./conditions-filter.js";
import { enqueueExportRun } from "./lifecycle.js";
import { checkExportRequest, type CreateExportRequest, type ExportKind, type ExportParams } from "./request.js";
import { newestFirst, newestFirstPage } from "../paging.js";

export type ExportRow = typeof exports.$inferSelect;

export async function getExport(db: Db, workspaceId: string, id: string): Promise<ExportRow> {
  if (!isUuid(id)) throw new NotFoundError("Export");
  const [row] = await db.select().from(exports).where(and(eq(exports.id, id), eq(exports.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Export");
  return row;
}

/** The export as the API shows it: API.md's export object plus what was asked for, why it failed and its webhook. */
export function exportView(row: ExportRow) {
  const p = row.params as unknown as ExportParams;
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    columns: p.columns,
    filters: { segmentId: p.segmentId, conditions: p.conditions, events: p.events, from: p.from, to: p.to },
    gzip: p.gzip,
    bom: p.bom,
    rowCount: row.rowCount,
    sizeBytes: row.sizeBytes,
    failureReason: row.failureReason,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    callbackUrl: row.callbackUrl,
    webhookStatus: row.webhookStatus,
    webhookAttempts: row.webhookAttempts,
    webhookLastError: row.webhookLastError,
  };
}

/** A segment the export names (segmentId, or a segment condition) must be one of the workspace's: else 404. */
async function assertSegments(db: Db, workspaceId: string, ids: string[], field: string): Promise<void> {
  const wanted = [...new Set(ids)];
  if (wanted.length === 0) return;
  const found = wanted.every(isUuid)
    ? await db.select({ id: segments.id }).from(segments).where(and(inArray(segments.id, wanted), eq(segments.workspaceId, workspaceId)))
    : [];
  if (found.length !== wanted.length) throw new NotFoundError("Segment", { field });
}

/**
 * Records an export and queues its job. A callbackUrl is taken as validated (callbackUrlSchema) and allowed (the
 * server signs webhooks) by the caller. The export exists only if its job was queued: when the queue is down the
 * row is removed again and the caller gets the queue's 503.
 */
export async function createExport(db: Db, producer: Producer, workspaceId: string, req: CreateExportRequest): Promise<ExportRow> {
  const params = checkExportRequest(req, checkConditions);
  if (params.segmentId) await assertSegments(db, workspaceId, [params.segmentId], "segmentId");
  if (params.conditions !== null) await assertSegments(db, workspaceId, conditionSegments(params.conditions), "conditions");
  const [row] = await db
    .insert(exports)
    .values({ workspaceId, kind: req.kind as ExportKind, params: params as unknown as Record<string, unknown>, callbackUrl: req.callbackUrl ?? null })
    .returning();
  if (!row) throw new Error("insert into exports returned nothing");
  try {
    await enqueueExportRun(producer, { workspaceId, id: row.id });
  } catch (err) {
    await db.delete(exports).where(eq(exports.id, row.id));
    throw err;
  }
  return row;
}

export async function listExports(db: Db, workspaceId: string, q: { status?: ExportStatus; limit: number; cursor?: string }) {
  const conds = [eq(exports.workspaceId, workspaceId)];
  if (q.status) conds.push(eq(exports.status, q.status));
  const { after, orderBy } = newestFirst(exports, q.cursor);
  if (after) conds.push(after);
  const rows = await db
    .select()
    .from(exports)
    .where(and(...conds))
    .orderBy(...orderBy)
    .limit(q.limit + 1);
  return newestFirstPage(rows, q.limit, exportView);
}

export interface Download {
  stream: Readable;
  sizeBytes: number;
  filename: string;
  contentType: string;
}

/**
 * Opens a finished export's file. Another workspace's export is 404; one that is not done yet, failed or expired is
 * 409 with a code saying which (the export exists, so 404 would mislead a client polling for it).
 */
export async function openDownload(db: Db, storage: Storage, workspaceId: string, id: string, now = new Date()): Promise<Download> {
  const row = await getExport(db, workspaceId, id);
  const expired = row.status === "expired" || (row.status === "done" && row.expiresAt !== null && row.expiresAt <= now);
  if (expired) throw new ConflictError("export_expired", "The export has expired and its file was deleted; create a new export.");
  if (row.status === "failed") throw new ConflictError("export_failed", `The export failed: ${row.failureReason ?? "no reason recorded"}.`);
  if (row.status !== "done" || !row.storageKey || row.sizeBytes === null) {
    throw new ConflictError("export_not_ready", `The export is ${row.status}; download it once its status is done.`);
  }
  const gzip = row.storageKey.endsWith(".gz");
  const stream = await storage.read(row.storageKey);
  return {
    stream,
    sizeBytes: row.sizeBytes,
    filename: `roster-${row.kind}-${row.createdAt.toISOString().slice(0, 10)}-${row.id}.csv${gzip ? ".gz" : ""}`,
    contentType: gzip ? "application/gzip" : "text/csv; charset=utf-8",
  };
}
