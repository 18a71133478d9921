/**
 * The exports table's status machine: queued ─▶ processing ─▶ done ─▶ expired (its file deleted by the cleanup), or
 * ─▶ failed. The named status sets, the run's transitions with their SQL (fenced: taking the export bumps `fence`, and
 * a run writes only while it holds the newest), the job id and enqueue, how an export fails for good, and which
 * exports are stranded (active with no live job).
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { exports, type ExportStatus } from "../../db/schema.js";
import { exportRunJobId } from "../../queue/job-ids.js";
import { olderThan, type Enqueuer, type FinalFailure, type RunKind, type RunRef, type StrandedRun } from "../runs.js";

type ExportRow = typeof exports.$inferSelect;

/** Postgres expects a job for the export. */
export const EXPORT_ACTIVE = ["queued", "processing"] as const satisfies readonly ExportStatus[];
/** The export may still have a file in storage (the cleanup deletes an expired one's). */
export const EXPORT_WITH_FILE = ["done", "expired"] as const satisfies readonly ExportStatus[];
/** The run ended: the export is announced to its callbackUrl (`expired` comes later, from done). */
export const EXPORT_FINAL = ["done", "failed", "expired"] as const satisfies readonly ExportStatus[];

const DAY_MS = 24 * 3600 * 1000;

/** Queues the run of an export that was just recorded (queued). */
export async function enqueueExportRun(producer: Enqueuer, run: RunRef): Promise<void> {
  await producer.enqueue("export.run", { workspaceId: run.workspaceId, exportId: run.id }, { jobId: exportRunJobId(run.id) });
}

/** Takes the export for a run (a new fencing token); null when it is no longer active. */
export async function takeExport(db: Db, ids: { workspaceId: string; exportId: string }): Promise<ExportRow | null> {
  const [taken] = await db
    .update(exports)
    .set({ status: "processing", fence: sql`${exports.fence} + 1`, startedAt: new Date(), failureReason: null })
    .where(and(eq(exports.id, ids.exportId), eq(exports.workspaceId, ids.workspaceId), inArray(exports.status, EXPORT_ACTIVE)))
    .returning();
  return taken ?? null;
}

/** While this run holds the export (its fence, still processing). */
const heldBy = (run: Pick<ExportRow, "id" | "fence">) => and(eq(exports.id, run.id), eq(exports.fence, run.fence), eq(exports.status, "processing"));

/** The run wrote its file: done, expiring after `ttlDays`. False when a newer run took the export meanwhile. */
export async function completeExport(
  db: Db,
  run: Pick<ExportRow, "id" | "fence">,
  file: { storageKey: string; rowCount: number; sizeBytes: number },
  ttlDays: number,
): Promise<boolean> {
  const finishedAt = new Date();
  const rows = await db
    .update(exports)
    .set({ status: "done", ...file, finishedAt, expiresAt: new Date(finishedAt.getTime() + ttlDays * DAY_MS) })
    .where(heldBy(run))
    .returning({ id: exports.id });
  return rows.length > 0;
}

/** The run found a problem no retry can fix (its segment was deleted, stored conditions refused): failed with it. */
export async function failHeldExport(db: Db, run: Pick<ExportRow, "id" | "fence">, reason: string): Promise<void> {
  await db.update(exports).set({ status: "failed", failureReason: reason, finishedAt: new Date() }).where(heldBy(run));
}

/** What the export says when its job will not run again. */
export function exportFailureReason(f: FinalFailure): string {
  if (f.cause === "attempts") return `The export stopped after ${f.attempts} attempts: ${f.message}`;
  return `The export stopped: ${f.message ?? "its job failed"}.`;
}

/** What happens when an export fails for good: it says `failed` with the reason, if it was still active. */
export async function failExport(db: Db, run: RunRef, failure: FinalFailure): Promise<boolean> {
  const rows = await db
    .update(exports)
    .set({ status: "failed", failureReason: exportFailureReason(failure), finishedAt: new Date() })
    .where(and(eq(exports.id, run.id), eq(exports.workspaceId, run.workspaceId), inArray(exports.status, EXPORT_ACTIVE)))
    .returning({ id: exports.id });
  return rows.length > 0;
}

/** Exports active in Postgres that were created more than `graceMs` ago. */
export async function strandedExports(db: Db, graceMs: number): Promise<StrandedRun[]> {
  const rows = await db
    .select({ id: exports.id, workspaceId: exports.workspaceId, status: exports.status })
    .from(exports)
    .where(and(inArray(exports.status, EXPORT_ACTIVE), lt(exports.createdAt, olderThan(graceMs))));
  return rows.map((r) => ({ ...r, jobIds: [exportRunJobId(r.id)] }));
}

export const exportRuns: RunKind = {
  name: "exports",
  noun: "export",
  queues: ["exports"],
  final: EXPORT_FINAL,
  webhook: "export",
  fail: failExport,
  stranded: strandedExports,
  // The run is fenced, so a rerun under the same job id is safe.
  requeue: async (_db, producer, run) => {
    await enqueueExportRun(producer, run);
    return true;
  },
  reusesJobId: true,
};
