/**
 * The imports table's status machine: the named status sets, every transition a run makes with its SQL, the job id
 * and enqueue of a run, how an import fails for good, and which imports are stranded (active with no live job).
 *
 *   draft ─┬─ validate ─▶ queued ─▶ validating ─▶ validated ─┐   (dry run: nothing written)
 *          └─ start ────▶ queued ─▶ processing ─▶ done        │
 *   validated / failed ── start / validate ──▶ queued ◀───────┘   failed resumes from its checkpoint
 *   queued / validating / processing ──▶ failed (for good: fail) | cancelled (cancel)
 *   validating / processing ── yield (time slice over) ──▶ the same status; its job waits behind the others
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports, type ImportStatus } from "../../db/schema.js";
import { importRunJobId } from "../../queue/job-ids.js";
import type { Storage } from "../../storage/storage.js";
import { openPartJobIds } from "./parts.js";
import { isIn, olderThan, type FinalFailure, type RunEnqueuer, type RunKind, type RunRef, type StrandedRun } from "../runs.js";

type ImportRow = typeof imports.$inferSelect;

/** Postgres expects a job for the import: queued, or held by a run. */
export const IMPORT_ACTIVE = ["queued", "validating", "processing"] as const satisfies readonly ImportStatus[];
/** Held by a run (claimed with a fencing token). */
export const IMPORT_RUNNING = ["validating", "processing"] as const satisfies readonly ImportStatus[];
/** A run (validate or start) may be requested. */
export const IMPORT_STARTABLE = ["draft", "validated", "failed"] as const satisfies readonly ImportStatus[];
/** The mapping may still change. */
export const IMPORT_EDITABLE = ["draft", "validated"] as const satisfies readonly ImportStatus[];
/** No run holds the import: a cancel takes effect at once (a running import stops after its batch). */
export const IMPORT_IDLE = ["draft", "validated", "failed", "queued"] as const satisfies readonly ImportStatus[];
/** Nothing can follow. */
export const IMPORT_CLOSED = ["done", "cancelled", "undoing", "undone"] as const satisfies readonly ImportStatus[];
/** The run ended for real (not a dry run; an undo counts too): the upload is only kept for a while (error report cells, a resume of a failed run). */
export const IMPORT_ENDED = ["done", "failed", "cancelled", "undoing", "undone"] as const satisfies readonly ImportStatus[];
/** A run ended: the import is announced to its callbackUrl. */
export const IMPORT_FINAL = ["done", "validated", "failed", "cancelled"] as const satisfies readonly ImportStatus[];

/**
 * The job that runs an import: `import.small` (the small-import lane, a queue with slots of its own) when its stored
 * file, after the header, is at most IMPORT_SMALL_MAX_BYTES; `import.run` otherwise. The lane follows from the row, so
 * a requeue (and the reconciler's lookup) lands where the first request did.
 */
export function importRunJobName(producer: Pick<RunEnqueuer, "smallImportMaxBytes">, row: Pick<ImportRow, "storedBytes" | "sizeBytes" | "dataOffset">): "import.run" | "import.small" {
  const bytes = (row.storedBytes ?? row.sizeBytes) - row.dataOffset;
  return producer.smallImportMaxBytes > 0 && bytes <= producer.smallImportMaxBytes ? "import.small" : "import.run";
}

/** The counts of a run, zero before its first batch. */
export const NO_COUNTS = { total: 0, processed: 0, created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0, errorCount: 0 } as const;

/** What a failed enqueue puts back: the import's fields before its run was requested. */
export type BeforeRun = Pick<ImportRow, "status" | "dryRun" | "checkpointRow" | "failureReason" | "finishedAt" | keyof typeof NO_COUNTS>;

/**
 * Puts the run of an import that says `queued` (or `validating`) into the job queue. When the queue is down, the
 * import goes back to what it was (`before`) and the error (503) is thrown. A crash between the two leaves a
 * queued import without a job: the reconciler re-enqueues it.
 */
export async function enqueueImportRun(db: Db, producer: RunEnqueuer, queued: ImportRow, before: BeforeRun): Promise<void> {
  try {
    // The job id derives from queued_at, so the reconciler can find the job (or see it is gone) after a Redis restart.
    await producer.enqueue(importRunJobName(producer, queued), { workspaceId: queued.workspaceId, importId: queued.id }, { jobId: importRunJobId(queued.id, queued.queuedAt ?? new Date()) });
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
export async function enqueueNewImport(db: Db, storage: Pick<Storage, "delete">, producer: RunEnqueuer, row: ImportRow): Promise<void> {
  try {
    await producer.enqueue(importRunJobName(producer, row), { workspaceId: row.workspaceId, importId: row.id }, { jobId: importRunJobId(row.id, row.queuedAt ?? new Date()) });
  } catch (err) {
    await db.delete(imports).where(and(eq(imports.id, row.id), eq(imports.workspaceId, row.workspaceId), eq(imports.status, "queued"), eq(imports.fence, row.fence)));
    await storage.delete(row.storageKey);
    throw err;
  }
}

/** Takes the import for a run: a new fencing token; a fresh start (or any dry run) resets counts and errors. */
export async function claimImport(db: Db, ids: { workspaceId: string; importId: string }): Promise<ImportRow | null> {
  return db.transaction(async (tx) => {
    // A split import's part rows first, then the import's: the order a part's batch takes them in (parts.ts).
    const parts = await tx.execute(sql`select part from import_parts where import_id = ${ids.importId} order by part for update`);
    const [cur] = await tx
      .select()
      .from(imports)
      .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId)))
      .for("update");
    if (!cur || !isIn(IMPORT_ACTIVE, cur.status) || !cur.mapping || !cur.identifier) return null;
    // A split import's run taken again while it runs (its job retried) carries on with its parts: they may be writing.
    const fresh = (cur.dryRun || cur.checkpointRow === 0) && !(parts.length > 0 && cur.status === "processing");
    if (fresh) {
      await tx.execute(sql`delete from import_errors where import_id = ${cur.id}`);
      await tx.execute(sql`delete from import_people where import_id = ${cur.id}`);
      // Parts that committed no row of theirs (a split import fails before its parts wrote): the split starts over.
      await tx.execute(sql`delete from import_parts where import_id = ${cur.id}`);
    }
    const [claimed] = await tx
      .update(imports)
      .set({
        fence: sql`${imports.fence} + 1`,
        attempts: sql`${imports.attempts} + 1`,
        status: cur.dryRun ? "validating" : "processing",
        startedAt: cur.startedAt && !fresh ? cur.startedAt : new Date(),
        updatedAt: new Date(),
        ...(fresh
          ? {
              total: 0,
              processed: 0,
              created: 0,
              updated: 0,
              unchanged: 0,
              skipped: 0,
              failed: 0,
              errorCount: 0,
              checkpointRow: 0,
              checkpointByte: cur.dataOffset,
              checkpointLine: cur.headerLines,
              finishedAt: null,
              failureReason: null,
            }
          : {}),
      })
      .where(eq(imports.id, cur.id))
      .returning();
    return claimed ?? null;
  });
}

/** A run found the import cannot go on (a malformed file, a segment it cannot create): failed, only while it holds the fence. */
export async function failClaimedImport(db: Db, imp: Pick<ImportRow, "id" | "fence">, reason: string): Promise<void> {
  await db
    .update(imports)
    .set({ status: "failed", failureReason: reason, finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(imports.id, imp.id), eq(imports.fence, imp.fence), inArray(imports.status, IMPORT_RUNNING)));
}

/**
 * A run gave its slot up to waiting work after a committed batch (its time slice ran out): the import stays
 * `processing` at its checkpoint, and the claim it made is given back to `attempts`, which counts the runs that
 * started and did not end by yielding (the resume claims again). Only while it holds the fence.
 */
export async function yieldImport(db: Db, imp: Pick<ImportRow, "id" | "fence">): Promise<void> {
  await db
    .update(imports)
    .set({ attempts: sql`greatest(${imports.attempts} - 1, 0)`, updatedAt: new Date() })
    .where(and(eq(imports.id, imp.id), eq(imports.fence, imp.fence), inArray(imports.status, IMPORT_RUNNING)));
}

/**
 * Ends a run that read its whole file: done (validated for a dry run), with the static segment it was asked to create
 * filled from the people it touched. Null when a newer run holds the fence (nothing changed).
 */
export async function finishImport(db: Db, imp: ImportRow, createdSegmentId: string | null): Promise<"done" | "validated" | null> {
  return db.transaction(async (tx) => {
    const [cur] = await tx.select({ fence: imports.fence, status: imports.status }).from(imports).where(eq(imports.id, imp.id)).for("update");
    if (!cur || cur.fence !== imp.fence || !isIn(IMPORT_RUNNING, cur.status)) return null;
    if (createdSegmentId) {
      // The joins of people the import did not create are recorded (an undo removes them; it erases the others).
      await tx.execute(sql`
        with joined as (
          insert into segment_memberships (workspace_id, segment_id, person_id)
          select ${imp.workspaceId}::uuid, ${createdSegmentId}::uuid, person_id from (
            select person_id from import_people where import_id = ${imp.id}
            union select id from people where workspace_id = ${imp.workspaceId}::uuid and created_import_id = ${imp.id}) t
          order by person_id
          on conflict do nothing
          returning person_id)
        insert into import_segment_joins (import_id, person_id, segment_id, row, was_member, before_value, after_value)
        select ${imp.id}::uuid, ip.person_id, ${createdSegmentId}::uuid, ip.row, false, null, null
        from joined j join import_people ip on ip.import_id = ${imp.id}::uuid and ip.person_id = j.person_id and ip.outcome <> 'created'
        on conflict do nothing`);
    }
    await tx.execute(sql`delete from import_people where import_id = ${imp.id}`);
    // Appended in SQL: the batches added the segments of `segment` columns to the row since this run read it.
    const segmentIds = createdSegmentId
      ? sql`case when ${imports.segmentIds} @> ${JSON.stringify([createdSegmentId])}::jsonb then ${imports.segmentIds} else ${imports.segmentIds} || ${JSON.stringify([createdSegmentId])}::jsonb end`
      : imports.segmentIds;
    const status = imp.dryRun ? "validated" : "done";
    // The database's clock (this transaction's start), as for everything the batches and the segment fill above wrote:
    // an undo tells what changed after the import by comparing with it.
    await tx.update(imports).set({ status, finishedAt: sql`now()`, updatedAt: new Date(), segmentIds }).where(eq(imports.id, imp.id));
    return status;
  });
}

/** What the import says when its job will not run again. Committed batches stay; a start resumes from the checkpoint. */
export function importFailureReason(f: FinalFailure): string {
  switch (f.cause) {
    case "attempts":
      return `The import stopped after ${f.attempts} attempts: ${f.message}`;
    case "gave_up":
      return `The import stopped: ${f.message}. Committed rows are kept; start it again to resume from the last committed batch.`;
    case "job_failed":
      return `The import stopped: ${f.message ?? "its job failed"}. Start it again to resume.`;
  }
}

/** What happens when an import fails for good: it says `failed` with the reason, if it was still active. */
export async function failImport(db: Db, run: RunRef, failure: FinalFailure): Promise<boolean> {
  const rows = await db
    .update(imports)
    .set({ status: "failed", failureReason: importFailureReason(failure), finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(imports.id, run.id), eq(imports.workspaceId, run.workspaceId), inArray(imports.status, IMPORT_ACTIVE)))
    .returning({ id: imports.id });
  return rows.length > 0;
}

/** Imports active in Postgres whose run was requested more than `graceMs` ago. */
export async function strandedImports(db: Db, graceMs: number): Promise<StrandedRun[]> {
  const rows = await db
    .select({ id: imports.id, workspaceId: imports.workspaceId, status: imports.status, queuedAt: imports.queuedAt })
    .from(imports)
    .where(and(inArray(imports.status, IMPORT_ACTIVE), lt(imports.queuedAt, olderThan(graceMs))));
  const queued = new Map(rows.flatMap((r) => (r.queuedAt ? [[r.id, r.queuedAt] as const] : [])));
  // A split import's parts run under jobs of their own: any of them live, and the import is not stranded.
  const partJobs = await openPartJobIds(db, [...queued.keys()], queued);
  return rows.flatMap((r) => (r.queuedAt ? [{ ...r, queuedAt: r.queuedAt, jobIds: [importRunJobId(r.id, r.queuedAt), ...(partJobs.get(r.id) ?? [])] }] : []));
}

/** A new run request for an import whose job is gone: a fresh queued_at (so a new job id), only if nothing changed meanwhile. */
export async function requeueImport(db: Db, producer: RunEnqueuer, run: StrandedRun): Promise<boolean> {
  if (!run.queuedAt) return false;
  const queuedAt = new Date();
  const rows = await db
    .update(imports)
    .set({ queuedAt })
    .where(
      and(
        eq(imports.id, run.id),
        eq(imports.status, run.status as ImportStatus),
        sql`date_trunc('milliseconds', ${imports.queuedAt}) = ${run.queuedAt.toISOString()}::timestamptz`,
      ),
    )
    .returning({ storedBytes: imports.storedBytes, sizeBytes: imports.sizeBytes, dataOffset: imports.dataOffset });
  if (!rows[0]) return false;
  await producer.enqueue(importRunJobName(producer, rows[0]), { workspaceId: run.workspaceId, importId: run.id }, { jobId: importRunJobId(run.id, queuedAt) });
  return true;
}

export const importRuns: RunKind = {
  name: "imports",
  noun: "import",
  queues: ["imports", "imports-small"],
  final: IMPORT_FINAL,
  webhook: "import",
  fail: failImport,
  stranded: strandedImports,
  requeue: requeueImport,
  reusesJobId: false,
};
