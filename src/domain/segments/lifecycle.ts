/**
 * A dynamic segment's recompute, as a kind of run: ready ─▶ computing ─▶ ready | failed. Requests (and their job ids)
 * are made in triggers.ts; the recompute itself (recompute.ts) records its failures on the segment. A recompute starts
 * over from the conditions, so it has no fail-for-good: a lost or failed job is simply requested again. Here: the
 * status sets, and which segments are stranded (computing with no live job of their own or of their workspace).
 */
import { and, eq, isNull, lt, or } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments, type SegmentStatus } from "../../db/schema.js";
import { segmentRecomputeJobId, workspaceRecomputeJobId } from "../../queue/job-ids.js";
import { olderThan, type RunKind, type StrandedRun } from "../runs.js";
import { requestSegmentRecompute } from "./triggers.js";

/** A recompute is queued or running. */
export const SEGMENT_ACTIVE = ["computing"] as const satisfies readonly SegmentStatus[];
/** The last recompute ended. */
export const SEGMENT_FINAL = ["ready", "failed"] as const satisfies readonly SegmentStatus[];

/** Dynamic segments computing, last requested and updated more than `graceMs` ago. */
export async function strandedSegments(db: Db, graceMs: number): Promise<StrandedRun[]> {
  const rows = await db
    .select({ id: segments.id, workspaceId: segments.workspaceId, status: segments.status })
    .from(segments)
    .where(
      and(
        eq(segments.status, "computing"),
        eq(segments.type, "dynamic"),
        or(isNull(segments.recomputeRequestedAt), lt(segments.recomputeRequestedAt, olderThan(graceMs))),
        lt(segments.updatedAt, olderThan(graceMs)),
      ),
    );
  // A workspace recompute computes each of its segments: its live job counts as the segment's.
  return rows.map((r) => ({ ...r, jobIds: [segmentRecomputeJobId(r.id), workspaceRecomputeJobId(r.workspaceId)] }));
}

export const segmentRuns: RunKind = {
  name: "segments",
  noun: "segment",
  queues: ["segments"],
  final: SEGMENT_FINAL,
  stranded: strandedSegments,
  requeue: async (db, producer, run) => {
    await requestSegmentRecompute(db, producer, run.workspaceId, run.id);
    return true;
  },
  // Finished recompute jobs are removed at once (removeWhenFinished): nothing lingers under the id.
  reusesJobId: false,
};
