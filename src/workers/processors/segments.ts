import { UnrecoverableError } from "bullmq";
import type { Db } from "../../db/client.js";
import { ValidationError } from "../../domain/errors.js";
import { recomputeSegment, recomputeWorkspace, requestedSince, workspacesWithDynamicSegments } from "../../domain/segments/recompute.js";
import { requestDependentsRecompute, requestWorkspaceRecompute, type Enqueuer } from "../../domain/segments/triggers.js";
import type { Processor } from "../types.js";

export interface SegmentProcessorDeps {
  db: Db;
  producer: Enqueuer;
}

/** Jobs of one segment that run again for requests they absorbed after their last run (see requestedSince). */
const MAX_JOB_RERUNS = 5;

/**
 * One segment; then the segments that use it directly (they cascade to theirs), so composed segments follow. Last,
 * a request stamped after the last run started (it arrived while this job still held the job id, so its enqueue
 * was absorbed) makes the job run again.
 */
export function segmentRecomputeProcessor(deps: SegmentProcessorDeps): Processor<"segment.recompute"> {
  return async (payload, ctx) => {
    for (let pass = 1; ; pass++) {
      let outcome;
      try {
        outcome = await recomputeSegment(deps.db, payload.workspaceId, payload.segmentId, ctx.log);
      } catch (err) {
        // Stored conditions the language refuses fail the same way on every attempt: no retries (the reason is on the segment).
        if (err instanceof ValidationError) throw new UnrecoverableError(err.message);
        throw err;
      }
      if (!outcome) return { skipped: "segment is gone or static" };
      await requestDependentsRecompute(deps.db, deps.producer, payload.workspaceId, payload.segmentId);
      if (pass >= MAX_JOB_RERUNS || !(await requestedSince(deps.db, payload.segmentId, outcome.lastStartedAt))) return outcome;
    }
  };
}

/** Every dynamic segment of a workspace in dependency order; fails (and is retried) when one of them failed. */
export function workspaceRecomputeProcessor(deps: SegmentProcessorDeps): Processor<"segments.recompute_workspace"> {
  return async (payload, ctx) => {
    const { outcomes, failed } = await recomputeWorkspace(deps.db, payload.workspaceId, ctx.log);
    if (failed.length) throw new Error(`${failed.length} segment(s) failed to recompute: ${failed.map((f) => `${f.segmentId}: ${f.error}`).join("; ")}`);
    return { segments: outcomes.length };
  };
}

/** The nightly refresh: one deduplicated workspace recompute per workspace with dynamic segments. */
export function refreshAllProcessor(deps: SegmentProcessorDeps): Processor<"segments.refresh_all"> {
  return async (_payload, ctx) => {
    const workspaces = await workspacesWithDynamicSegments(deps.db);
    for (const ws of workspaces) await requestWorkspaceRecompute(deps.db, deps.producer, ws);
    ctx.log.info({ workspaces: workspaces.length }, "nightly segment refresh queued");
    return { workspaces: workspaces.length };
  };
}
