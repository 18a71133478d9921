/**
 * The deletions table's status machine: queued ─▶ processing ─▶ done, or ─▶ failed. Named status sets, the job id
 * and enqueue, taking a deletion for a run (fenced: each run bumps `fence`, and a batch commits only while its run
 * holds the newest), how it fails for good, and which deletions are stranded (active with no live job). Shaped like
 * the other kinds' lifecycle modules so the one reconciler and run wrapper can take it over.
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { deletions, type DeletionStatus } from "../../db/schema.js";
import { deletionRunJobId } from "../../queue/job-ids.js";
import { olderThan, type Enqueuer, type FinalFailure, type RunKind, type RunRef, type StrandedRun } from "../runs.js";

export type DeletionRow = typeof deletions.$inferSelect;

/** Postgres expects a job for the deletion. */
export const DELETION_ACTIVE = ["queued", "processing"] as const satisfies readonly DeletionStatus[];

/** The run ended. */
export const DELETION_FINAL = ["done", "failed"] as const satisfies readonly DeletionStatus[];

export async function enqueueDeletionRun(producer: Enqueuer, run: RunRef): Promise<void> {
  await producer.enqueue("deletion.run", { workspaceId: run.workspaceId, deletionId: run.id }, { jobId: deletionRunJobId(run.id) });
}

/** Takes the deletion for a run (a new fencing token); null when it is no longer active. */
export async function takeDeletion(db: Db, ids: { workspaceId: string; deletionId: string }): Promise<DeletionRow | null> {
  const [taken] = await db
    .update(deletions)
    .set({
      status: "processing",
      fence: sql`${deletions.fence} + 1`,
      attempts: sql`${deletions.attempts} + 1`,
      startedAt: sql`coalesce(${deletions.startedAt}, now())`,
      failureReason: null,
      updatedAt: new Date(),
    })
    .where(and(eq(deletions.id, ids.deletionId), eq(deletions.workspaceId, ids.workspaceId), inArray(deletions.status, DELETION_ACTIVE)))
    .returning();
  return taken ?? null;
}

/** What the deletion says when its job will not run again: committed batches stay erased. */
export function deletionFailureReason(f: FinalFailure): string {
  const why = f.cause === "attempts" ? `after ${f.attempts} attempts: ${f.message}` : (f.message ?? "its job failed");
  return `The deletion stopped: ${why}. People erased by committed batches stay erased; the rest were not touched.`;
}

/** Ends an active deletion for good with the reason; true when this call changed the row. */
export async function failDeletion(db: Db, run: RunRef, failure: FinalFailure): Promise<boolean> {
  const rows = await db
    .update(deletions)
    .set({ status: "failed", failureReason: deletionFailureReason(failure), finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(deletions.id, run.id), eq(deletions.workspaceId, run.workspaceId), inArray(deletions.status, DELETION_ACTIVE)))
    .returning({ id: deletions.id });
  return rows.length > 0;
}

/** Deletions active in Postgres, created more than `graceMs` ago (younger ones may be mid-enqueue). */
export async function strandedDeletions(db: Db, graceMs: number): Promise<StrandedRun[]> {
  const rows = await db
    .select({ id: deletions.id, workspaceId: deletions.workspaceId, status: deletions.status })
    .from(deletions)
    .where(and(inArray(deletions.status, DELETION_ACTIVE), lt(deletions.createdAt, olderThan(graceMs))));
  return rows.map((r) => ({ ...r, jobIds: [deletionRunJobId(r.id)] }));
}

export const deletionRuns: RunKind = {
  name: "deletions",
  noun: "deletion",
  queues: ["deletions"],
  final: DELETION_FINAL,
  fail: failDeletion,
  stranded: strandedDeletions,
  // The run is fenced and resumes from what is left, so a rerun under the same job id is safe.
  requeue: async (_db, producer, run) => {
    await enqueueDeletionRun(producer, run);
    return true;
  },
  reusesJobId: true,
};
