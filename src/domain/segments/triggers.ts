import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segmentDependencies, segments } from "../../db/schema.js";
import { segmentRecomputeJobId, workspaceRecomputeJobId } from "../../queue/job-ids.js";
import type { Producer } from "../../queue/producer.js";

export type Enqueuer = Pick<Producer, "enqueue">;


/**
 * Asks for a recompute of one segment. The request time is stamped on the segment first: a recompute already
 * running (which absorbs this enqueue, same job id) sees the newer stamp when it ends and runs once more.
 */
export async function requestSegmentRecompute(db: Db, producer: Enqueuer, workspaceId: string, segmentId: string): Promise<void> {
  await db
    .update(segments)
    .set({ recomputeRequestedAt: sql`clock_timestamp()` })
    .where(and(eq(segments.id, segmentId), eq(segments.workspaceId, workspaceId)));
  await producer.enqueue("segment.recompute", { workspaceId, segmentId }, { jobId: segmentRecomputeJobId(segmentId), removeWhenFinished: true });
}

/**
 * The API's recompute request in one round trip on the way in: stamps the request on the segment when it is a dynamic
 * segment of the workspace and returns it as stamped (then enqueues, as requestSegmentRecompute); null when there is
 * no such dynamic segment, with nothing stamped or enqueued.
 */
export async function requestDynamicSegmentRecompute(db: Db, producer: Enqueuer, workspaceId: string, segmentId: string) {
  const [row] = await db
    .update(segments)
    .set({ recomputeRequestedAt: sql`clock_timestamp()` })
    .where(and(eq(segments.id, segmentId), eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")))
    .returning();
  if (!row) return null;
  await producer.enqueue("segment.recompute", { workspaceId, segmentId }, { jobId: segmentRecomputeJobId(segmentId), removeWhenFinished: true });
  return row;
}

/** Asks for a recompute of every dynamic segment of the workspace (deduplicated per workspace). */
export async function requestWorkspaceRecompute(db: Db, producer: Enqueuer, workspaceId: string): Promise<void> {
  await db
    .update(segments)
    .set({ recomputeRequestedAt: sql`clock_timestamp()` })
    .where(and(eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")));
  await producer.enqueue("segments.recompute_workspace", { workspaceId }, { jobId: workspaceRecomputeJobId(workspaceId), removeWhenFinished: true });
}

/** Asks for a recompute of the segments whose conditions use `segmentId` directly (they cascade further). */
export async function requestDependentsRecompute(db: Db, producer: Enqueuer, workspaceId: string, segmentId: string): Promise<void> {
  const users = await db
    .select({ id: segmentDependencies.segmentId })
    .from(segmentDependencies)
    .where(and(eq(segmentDependencies.workspaceId, workspaceId), eq(segmentDependencies.dependsOnId, segmentId)));
  for (const u of users) if (u.id !== segmentId) await requestSegmentRecompute(db, producer, workspaceId, u.id);
}
