import { UnrecoverableError } from "bullmq";
import type { Db } from "../../db/client.js";
import { ValidationError } from "../../domain/errors.js";
import { recomputeSegment, recomputeWorkspace, workspacesWithDynamicSegments } from "../../domain/segments/recompute.js";
import { requestDependentsRecompute, requestWorkspaceRecompute, type Enqueuer } from "../../domain/segments/triggers.js";
import type { Processor } from "../types.js";

export interface SegmentProcessorDeps {
  db: Db;
  producer: Enqueuer;
  /** ANALYZE_AFTER_ROWS (db/analyze.ts). */
  analyzeAfterRows?: number;
}

/**
 * One segment, again while requests it absorbed are pending (the rerun loop is recomputeSegment's); after each run,
 * the segments that use it directly (they cascade to theirs), so composed segments follow.
 */
export function segmentRecomputeProcessor(deps: SegmentProcessorDeps): Processor<"segment.recompute"> {
  return async (payload, ctx) => {
    let outcome;
    try {
      outcome = await recomputeSegment(
        deps.db,
        payload.workspaceId,
        payload.segmentId,
        ctx.log,
        () => requestDependentsRecompute(deps.db, deps.producer, payload.workspaceId, payload.segmentId),
        { analyzeAfterRows: deps.analyzeAfterRows },
      );
    } catch (err) {
      // Stored conditions the language refuses fail the same way on every attempt: no retries (the reason is on the segment).
      if (err instanceof ValidationError) throw new UnrecoverableError(err.message);
      throw err;
    }
    return outcome ?? { skipped: "segment is gone or static" };
  };
}

/** Every dynamic segment of a workspace in dependency order; fails (and is retried) when one of them failed. */
export function workspaceRecomputeProcessor(deps: SegmentProcessorDeps): Processor<"segments.recompute_workspace"> {
  return async (payload, ctx) => {
    const { outcomes, failed } = await recomputeWorkspace(deps.db, payload.workspaceId, ctx.log, { analyzeAfterRows: deps.analyzeAfterRows });
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
