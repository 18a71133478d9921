import { and, asc, eq, inArray, isNull } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { importErrors, imports, type ImportStatus } from "../../db/schema.js";
import { isUuid } from "../../lib/uuid.js";
import type { Producer } from "../../queue/producer.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { mergeMapping, validateMapping, type ImportKind, type MappingField } from "./mapping.js";
import { redactSample } from "./members/redact.js";
import { IMPORT_CLOSED, IMPORT_EDITABLE, IMPORT_IDLE, IMPORT_STARTABLE, NO_COUNTS, enqueueImportRun } from "./lifecycle.js";
import { isIn } from "../runs.js";
import type { Identifier } from "./targets.js";
import { importProgress } from "./progress.js";
import { newestFirst, newestFirstPage } from "../paging.js";

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
    // The column is text; only validateMapping writes it, with one of IDENTIFIERS.
    identifier: row.identifier as Identifier | null,
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
    template: row.template ?? null,
    progress: importProgress(row),
    undo: row.undo ? { deleted: row.undo.deleted, restored: row.undo.restored, kept: row.undo.kept } : null,
  };
}

export async function listImports(db: Db, workspaceId: string, q: { status?: ImportStatus; limit: number; cursor?: string }) {
  const conds = [eq(imports.workspaceId, workspaceId)];
  if (q.status) conds.push(eq(imports.status, q.status));
  const { after, orderBy } = newestFirst(imports, q.cursor);
  if (after) conds.push(after);
  const rows = await db
    .select()
    .from(imports)
    .where(and(...conds))
    .orderBy(...orderBy)
    .limit(q.limit + 1);
  return newestFirstPage(rows, q.limit, summaryView);
}

/**
 * Sets identifier, mapping and options; allowed until the import starts (a validated import goes back to draft).
 * A partial mapping is laid over the current one (the suggestion for a draft without one); "suggested" takes the
 * suggestion whole.
 */
export async function setMapping(db: Db, workspaceId: string, id: string, body: { identifier: string; mapping?: MappingField; options?: unknown }) {
  const row = await getImport(db, workspaceId, id);
  if (!isIn(IMPORT_EDITABLE, row.status)) {
    throw new ConflictError("import_not_editable", `The import is ${row.status}; its mapping can no longer change.`);
  }
  const mapping = body.mapping === "suggested" ? row.suggestedMapping : mergeMapping(row.headers, row.mapping ?? row.suggestedMapping, body.mapping ?? {});
  const v = validateMapping({ kind: row.kind as ImportKind, headers: row.headers, identifier: body.identifier, mapping, options: body.options ?? {} });
  // A column newly mapped to "password" is hidden in the stored sample too (redaction only ever adds).
  const sample = redactSample(row.kind as ImportKind, row.headers, row.sample, v.mapping);
  const [updated] = await db
    .update(imports)
    .set({ identifier: v.identifier, mapping: v.mapping, options: v.options, sample, status: "draft", updatedAt: new Date() })
    .where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId), inArray(imports.status, IMPORT_EDITABLE)))
    .returning();
  if (!updated) throw new ConflictError("import_not_editable", "The import changed state meanwhile; fetch it and try again.");
  return updated;
}

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
  if (!isIn(IMPORT_STARTABLE, row.status)) {
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

/** Cancels at once when nothing runs; a running import stops after its current batch (committed rows stay). */
export async function cancelImport(db: Db, workspaceId: string, id: string): Promise<ImportRow> {
  const row = await getImport(db, workspaceId, id);
  if (isIn(IMPORT_CLOSED, row.status)) throw new ConflictError("import_finished", `The import is already ${row.status}.`);
  const immediate = isIn(IMPORT_IDLE, row.status);
  const [updated] = await db
    .update(imports)
    .set(immediate ? { status: "cancelled", finishedAt: new Date(), updatedAt: new Date() } : { cancelRequested: true, updatedAt: new Date() })
    .where(and(eq(imports.id, id), eq(imports.workspaceId, workspaceId), eq(imports.status, row.status)))
    .returning();
  if (!updated) return cancelImport(db, workspaceId, id);
  return updated;
}
