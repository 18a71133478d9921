/**
 * The deletions table's status machine: queued ─▶ processing ─▶ done, or ─▶ failed. Named status sets, the job id
 * and enqueue, taking a deletion for a run (fenced: each run bumps `fence`, and a batch commits only while its run
 * holds the newest), how it fails for good, and which deletions are stranded (active with no live job). Shaped like
 * the other kinds' lifecycle modules so the one reconciler and run wrapper can take it over.
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { deletions, type DeletionStatus } from "../../db/schema.js";
import type { Producer } from "../../queue/producer.js";

export type DeletionRow = typeof deletions.$inferSelect;

/** Postgres expects a job for the deletion. */
export const DELETION_ACTIVE = ["queued", "processing"] as const satisfies readonly DeletionStatus[];

/** BullMQ job ids may not contain ':'; one per deletion, so a re-enqueue of a live job is absorbed. */
export const deletionJobId = (deletionId: string) => `deletion-${deletionId}`;

export async function enqueueDeletionRun(producer: Pick<Producer, "enqueue">, run: { id: string; workspaceId: string }): Promise<void> {
  await producer.enqueue("deletion.run", { workspaceId: run.workspaceId, deletionId: run.id }, { jobId: deletionJobId(run.id) });
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
export async function failDeletion(db: Db, ids: { workspaceId: string; deletionId: string }, reason: string): Promise<boolean> {
  const rows = await db
    .update(deletions)
    .set({ status: "failed", failureReason: `The deletion stopped: ${reason}. People erased by committed batches stay erased; the rest were not touched.`, finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(deletions.id, ids.deletionId), eq(deletions.workspaceId, ids.workspaceId), inArray(deletions.status, DELETION_ACTIVE)))
    .returning({ id: deletions.id });
  return rows.length > 0;
}

/** Deletions active in Postgres, created more than `graceMs` ago (younger ones may be mid-enqueue). */
export async function strandedDeletions(db: Db, graceMs: number): Promise<{ id: string; workspaceId: string }[]> {
  return db
    .select({ id: deletions.id, workspaceId: deletions.workspaceId })
    .from(deletions)
    .where(and(inArray(deletions.status, DELETION_ACTIVE), lt(deletions.createdAt, sql`now() - make_interval(secs => ${graceMs / 1000})`)));
}
