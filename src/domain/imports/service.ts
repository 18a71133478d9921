import { and, asc, desc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { importErrors, imports, type ImportStatus } from "../../db/schema.js";
import { decodeCursor, encodeCursor } from "../../lib/cursor.js";
import { isUuid } from "../../lib/uuid.js";
import type { Producer } from "../../queue/producer.js";
import type { Storage } from "../../storage/storage.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { mergeMapping, validateMapping, type ImportKind, type MappingField } from "./mapping.js";
import { redactSample } from "./members/redact.js";
import { importJobId } from "./recovery.js";

export type ImportRow = typeof imports.$inferSelect;

/** How many errors the import object itself carries; the full list is the /errors CSV. */
const ERRORS_IN_OBJECT = 100;

export async function getImport(db: Db, workspaceId: string, id: string): Promise<ImportRow> {
  if (!isUuid(id)) throw new NotFoundError("Import");
  const [row] = await db.select().from(imports).where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Import");
  return row;
}

/** The import as the API shows it (API.md "Import object"). */
export async function importView(db: Db, row: ImportRow) {
  // error_count moves with the error rows in the same transactions (a run's batches, its fresh start): 0 means none.
  if (row.errorCount === 0) return { ...summaryView(row), errors: [] };
  const errors = await db
    .select({ row: importErrors.row, column: importErrors.column, value: importErrors.value, code: importErrors.code, message: importErrors.message })
    .from(importErrors)
    .where(eq(importErrors.importId, row.id))
    .orderBy(asc(importErrors.row), asc(importErrors.seq))
    .limit(ERRORS_IN_OBJECT);
  return { ...summaryView(row), errors };
}

export function summaryView(row: ImportRow) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    filename: row.filename,
    sizeBytes: row.sizeBytes,
    encoding: row.encoding,
    delimiter: row.delimiter,
    headers: row.headers,
    sample: row.sample,
    suggestedMapping: row.suggestedMapping,
    identifier: row.identifier,
    mapping: row.mapping,
    options: row.options,
    dryRun: row.dryRun,
    counts: {
      total: row.total,
      processed: row.processed,
      created: row.created,
      updated: row.updated,
      unchanged: row.unchanged,
      skipped: row.skipped,
      failed: row.failed,
    },
    errorCount: row.errorCount,
    cancelRequested: row.cancelRequested,
    segmentIds: row.segmentIds,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    failureReason: row.failureReason,
    callbackUrl: row.callbackUrl,
    webhookStatus: row.webhookStatus,
    webhookAttempts: row.webhookAttempts,
    webhookLastError: row.webhookLastError,
    uploadExpiredAt: row.uploadExpiredAt?.toISOString() ?? null,
    cellsExpiredAt: row.cellsExpiredAt?.toISOString() ?? null,
  };
}

export async function listImports(db: Db, workspaceId: string, q: { status?: ImportStatus; limit: number; cursor?: string }) {
  const conds = [eq(imports.workspaceId, workspaceId)];
  if (q.status) conds.push(eq(imports.status, q.status));
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new ValidationError("invalid_cursor", "The cursor is not one this API returned.");
    conds.push(sql`(date_trunc('milliseconds', ${imports.createdAt}), ${imports.id}) < (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid)`);
  }
  const rows = await db
    .select()
    .from(imports)
    .where(and(...conds))
    .orderBy(desc(sql`date_trunc('milliseconds', ${imports.createdAt})`), desc(imports.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return { data: page.map(summaryView), nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null };
}

/**
 * Sets identifier, mapping and options; allowed until the import starts (a validated import goes back to draft).
 * A partial mapping is laid over the current one (the suggestion for a draft without one); "suggested" takes the
 * suggestion whole.
 */
export async function setMapping(db: Db, workspaceId: string, id: string, body: { identifier: string; mapping?: MappingField; options?: unknown }) {
  const row = await getImport(db, workspaceId, id);
  if (!["draft", "validated"].includes(row.status)) {
    throw new ConflictError("import_not_editable", `The import is ${row.status}; its mapping can no longer change.`);
  }
  const mapping = body.mapping === "suggested" ? row.suggestedMapping : mergeMapping(row.headers, row.mapping ?? row.suggestedMapping, body.mapping ?? {});
  const v = validateMapping({ kind: row.kind as ImportKind, headers: row.headers, identifier: body.identifier, mapping, options: body.options ?? {} });
  // A column newly mapped to "password" is hidden in the stored sample too (redaction only ever adds).
  const sample = redactSample(row.kind as ImportKind, row.headers, row.sample, v.mapping);
  const [updated] = await db
    .update(imports)
    .set({ identifier: v.identifier, mapping: v.mapping, options: v.options, sample, status: "draft", updatedAt: new Date() })
    .where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId), inArray(imports.status, ["draft", "validated"])))
    .returning();
  if (!updated) throw new ConflictError("import_not_editable", "The import changed state meanwhile; fetch it and try again.");
  return updated;
}

/** The counts of a run, zero before its first batch. */
const NO_COUNTS = { total: 0, processed: 0, created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, errorCount: 0 } as const;

/**
 * Queues a run: a dry run (`validate`, status `validating` at once, as API.md says) or the real one (`start`, status
 * `queued`). A failed import restarts from its last committed batch; any other run starts with zero counts and no
 * errors, so a start after a dry run does not show the dry run's figures while it waits. (The error rows themselves go
 * when the run claims the import; error_count 0 already hides them.) When the queue is down the import is put back
 * as it was, counts included.
 */
export async function requestRun(db: Db, producer: Producer, workspaceId: string, id: string, dryRun: boolean): Promise<ImportRow> {
  const row = await getImport(db, workspaceId, id);
  // First: nothing can run on an import whose file is gone, whatever its status says.
  if (row.uploadExpiredAt) {
    throw new ConflictError("upload_expired", "The import's upload was deleted (its retention ended); upload the file again as a new import.", {
      uploadExpiredAt: row.uploadExpiredAt.toISOString(),
    });
  }
  const from: ImportStatus[] = ["draft", "validated", "failed"];
  if (!from.includes(row.status)) {
    throw new ConflictError("import_not_startable", `The import is ${row.status}; only draft, validated or failed imports can be ${dryRun ? "validated" : "started"}.`);
  }
  if (!row.mapping || !row.identifier) {
    throw new ValidationError("mapping_required", "Set the identifier and mapping first (PUT /v1/imports/:id/mapping).");
  }
  // A real run resumes only after a real run; anything else starts from the first row.
  const resume = !dryRun && row.status === "failed" && !row.dryRun && row.checkpointRow > 0;
  const [queued] = await db
    .update(imports)
    .set({
      status: dryRun ? "validating" : "queued",
      dryRun,
      queuedAt: new Date(),
      updatedAt: new Date(),
      cancelRequested: false,
      failureReason: null,
      finishedAt: null,
      ...(resume ? {} : { checkpointRow: 0, ...NO_COUNTS }),
    })
    // The retention sweep may delete the upload meanwhile: a run is only requested while the file is there.
    .where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId), eq(imports.status, row.status), isNull(imports.uploadExpiredAt)))
    .returning();
  if (!queued) throw new ConflictError("import_state_changed", "The import changed state meanwhile; fetch it and try again.");
  await enqueueImportRun(db, producer, queued, row);
  return queued;
}

/** What a failed enqueue puts back: the import's fields before its run was requested. */
export type BeforeRun = Pick<ImportRow, "status" | "dryRun" | "checkpointRow" | "failureReason" | "finishedAt" | keyof typeof NO_COUNTS>;

/**
 * Puts the run of an import that says `queued` (or `validating`) into the job queue. When the queue is down, the
 * import goes back to what it was (`before`) and the error (503) is thrown. A crash between the two leaves a
 * queued import without a job: the reconciler re-enqueues it.
 */
export async function enqueueImportRun(db: Db, producer: Producer, queued: ImportRow, before: BeforeRun): Promise<void> {
  try {
    // The job id derives from queued_at, so the reconciler can find the job (or see it is gone) after a Redis restart.
    await producer.enqueue("import.run", { workspaceId: queued.workspaceId, importId: queued.id }, { jobId: importJobId(queued.id, queued.queuedAt ?? new Date()) });
  } catch (err) {
    await db
      .update(imports)
      .set({
        status: before.status,
        dryRun: before.dryRun,
        checkpointRow: before.checkpointRow,
        failureReason: before.failureReason,
        finishedAt: before.finishedAt,
        total: before.total,
        processed: before.processed,
        created: before.created,
        updated: before.updated,
        unchanged: before.unchanged,
        skipped: before.skipped,
        failed: before.failed,
        errorCount: before.errorCount,
      })
      .where(and(eq(imports.id, queued.id), eq(imports.workspaceId, queued.workspaceId), eq(imports.status, queued.status), eq(imports.fence, queued.fence)));
    throw err;
  }
}

/**
 * Queues the run of an import created already queued (`start: true` on upload). When the queue is down the import
 * and its upload are deleted before the error (503) is thrown: the client never learnt its id, so a draft left behind
 * would be an orphan, and the 503 means "nothing was created, send it again". A job that still reaches Redis finds
 * no import and does nothing.
 */
export async function enqueueNewImport(db: Db, storage: Pick<Storage, "delete">, producer: Producer, row: ImportRow): Promise<void> {
  try {
    await producer.enqueue("import.run", { workspaceId: row.workspaceId, importId: row.id }, { jobId: importJobId(row.id, row.queuedAt ?? new Date()) });
  } catch (err) {
    await db.delete(imports).where(and(eq(imports.id, row.id), eq(imports.workspaceId, row.workspaceId), eq(imports.status, "queued"), eq(imports.fence, row.fence)));
    await storage.delete(row.storageKey);
    throw err;
  }
}

/** Cancels at once when nothing runs; a running import stops after its current batch (committed rows stay). */
export async function cancelImport(db: Db, workspaceId: string, id: string): Promise<ImportRow> {
  const row = await getImport(db, workspaceId, id);
  if (["done", "cancelled"].includes(row.status)) throw new ConflictError("import_finished", `The import is already ${row.status}.`);
  const immediate = ["draft", "validated", "failed", "queued"].includes(row.status);
  const [updated] = await db
    .update(imports)
    .set(immediate ? { status: "cancelled", finishedAt: new Date(), updatedAt: new Date() } : { cancelRequested: true, updatedAt: new Date() })
    .where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId), eq(imports.status, row.status)))
    .returning();
  if (!updated) return cancelImport(db, workspaceId, id);
  return updated;
}
