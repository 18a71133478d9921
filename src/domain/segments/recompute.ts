import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { compileConditions, parseConditions } from "./conditions.js";
import { dependencyOrder, loadSegmentGraph } from "./graph.js";
import { analyzeAfterBulkWrite } from "../../db/analyze.js";
import { diffMembership, lockSegmentMembership } from "./membership-diff.js";

/**
 * Full recompute of dynamic segments: the membership diff of membership-diff.ts over everyone in the workspace, then
 * the segment's count, status and timings. A job (one segment, or a whole workspace) runs again while requests
 * stamped after its last run started are pending (runWhileRequested).
 */

/**
 * Runs of one job, first included. Why a job reruns at all: requesters stamp `recompute_requested_at`, then enqueue
 * under one job id per segment / workspace (triggers.ts); while the job still holds that id, BullMQ absorbs the
 * enqueue, so the job itself must honour the stamp or the request is lost. Why a bound: requests that keep arriving
 * (an import finishing every few seconds) would otherwise hold the job and its worker slot forever; requests made
 * during a run coalesce into one rerun, so 5 runs absorb any burst short of that. Past the bound the pending request
 * waits for the next one or the nightly refresh (logged).
 */
const MAX_RUNS = 5;

export interface RecomputeOutcome {
  segmentId: string;
  entered: number;
  left: number;
  memberCount: number;
  durationMs: number;
  runs: number;
}

/** Where to look for newer requests: one segment of the workspace, or every dynamic segment of it. */
type RequestScope = { workspaceId: string; segmentId?: string };

/**
 * The one rerun loop: `run`, then `afterRun`, then a look for a recompute request in `scope` stamped after the run
 * started (Postgres clock); another run while there is one, up to MAX_RUNS. The look comes last, so the window in
 * which a request can still be absorbed unseen is only the few milliseconds until BullMQ removes the job. A null
 * result (nothing to recompute) ends the loop.
 */
async function runWhileRequested<T>(
  db: Db,
  scope: RequestScope,
  log: Logger,
  run: () => Promise<T | null>,
  afterRun?: (result: T) => Promise<void>,
): Promise<{ results: T[]; runs: number }> {
  const inScope = scope.segmentId ? sql`id = ${scope.segmentId}::uuid` : sql`workspace_id = ${scope.workspaceId}::uuid`;
  const [first] = await db.execute<{ now: string }>(sql`select clock_timestamp()::text as now`);
  let startedAt = first!.now;
  const results: T[] = [];
  for (let runs = 1; ; runs++) {
    const result = await run();
    if (result === null) return { results, runs: runs - 1 };
    results.push(result);
    if (afterRun) await afterRun(result);
    // Also the next run's start: taken before it, so a request stamped in between is not missed.
    const [look] = await db.execute<{ again: boolean; now: string }>(sql`
      select exists (select 1 from segments where ${inScope} and type = 'dynamic' and recompute_requested_at > ${startedAt}::timestamptz) as again,
        clock_timestamp()::text as now`);
    if (!look?.again) return { results, runs };
    if (runs >= MAX_RUNS) {
      log.warn({ ...scope, runs }, "segment recompute requests kept arriving; the latest waits for the next request or the nightly refresh");
      return { results, runs };
    }
    startedAt = look.now;
  }
}

/**
 * Recomputes one dynamic segment, again while newer requests arrived (see runWhileRequested); `afterRun` follows
 * each run (the job requests the dependent segments there). Null when the segment is gone or static.
 */
export async function recomputeSegment(
  db: Db,
  workspaceId: string,
  segmentId: string,
  log: Logger,
  afterRun?: () => Promise<void>,
  opts: RecomputeOptions = {},
): Promise<RecomputeOutcome | null> {
  const { results, runs } = await runWhileRequested(db, { workspaceId, segmentId }, log, () => recomputeOnce(db, workspaceId, segmentId, log, opts), afterRun);
  const last = results[results.length - 1];
  if (!last) return null;
  return {
    ...last,
    entered: results.reduce((n, r) => n + r.entered, 0),
    left: results.reduce((n, r) => n + r.left, 0),
    runs,
  };
}

export interface RecomputeOptions {
  /** ANALYZE_AFTER_ROWS: a run that moved this many members refreshes the memberships' statistics (db/analyze.ts). */
  analyzeAfterRows?: number;
}

/**
 * One run: the diff under the segment's exclusive membership lock, then the segment row; a failure is recorded on the
 * segment. A run that moved many members refreshes the memberships' statistics before the next segment (one that
 * uses this one) plans its own diff.
 */
async function recomputeOnce(db: Db, workspaceId: string, segmentId: string, log: Logger, opts: RecomputeOptions = {}): Promise<RecomputeOutcome | null> {
  const tStatus = performance.now();
  const [started] = await db
    .update(segments)
    .set({ status: "computing" })
    .where(and(eq(segments.id, segmentId), eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")))
    .returning({ name: segments.name, conditions: segments.conditions });
  if (!started) return null;
  const t0 = performance.now();
  const phases: Record<string, number> = { status: Math.round(t0 - tStatus) };
  let tPhase = t0;
  const phase = (name: string) => {
    const t = performance.now();
    phases[name] = Math.round(t - tPhase);
    tPhase = t;
  };
  let outcome: { entered: number; left: number; memberCount: number; durationMs: number };
  try {
    outcome = await db.transaction(async (tx) => {
      phase("begin");
      await lockSegmentMembership(tx, segmentId, "exclusive");
      phase("lock");
      const now = new Date();
      const predicate = compileConditions(parseConditions(started.conditions), { workspaceId, now });
      const diff = await diffMembership(tx, { workspaceId, segment: { id: segmentId, name: started.name }, predicate, at: now });
      phase("diff");
      const durationMs = Math.round(performance.now() - t0);
      const [done] = await tx.execute<{ member_count: number }>(sql`
        update segments set
          member_count = ${diff.members}::bigint,
          status = 'ready', failure_reason = null, last_computed_at = ${now.toISOString()}::timestamptz, last_duration_ms = ${durationMs}::int
        where id = ${segmentId}::uuid
        returning member_count::int as member_count`);
      phase("finish");
      return { entered: diff.entered, left: diff.left, memberCount: Number(done?.member_count ?? 0), durationMs };
    });
  } catch (err) {
    const reason = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
    await db
      .update(segments)
      .set({ status: "failed", failureReason: `The recompute failed: ${reason}` })
      .where(eq(segments.id, segmentId));
    throw err;
  }
  phase("commit");
  await analyzeAfterBulkWrite(db, "segment_memberships", outcome.entered + outcome.left, log, opts.analyzeAfterRows);
  log.info({ workspaceId, segmentId, entered: outcome.entered, left: outcome.left, memberCount: outcome.memberCount, durationMs: outcome.durationMs, phases }, "segment recomputed");
  return { segmentId, ...outcome, runs: 1 };
}

/**
 * Recomputes every dynamic segment of the workspace, each once per pass and after the segments it uses; failures
 * do not stop the rest. Another pass follows while a segment was stamped after the pass started (an import finishing
 * meanwhile: its enqueue was absorbed by this job), see runWhileRequested; `failed` is the last pass's.
 */
export async function recomputeWorkspace(db: Db, workspaceId: string, log: Logger, opts: RecomputeOptions = {}): Promise<{ outcomes: RecomputeOutcome[]; failed: { segmentId: string; error: string }[]; passes: number }> {
  const outcomes: RecomputeOutcome[] = [];
  let failed: { segmentId: string; error: string }[] = [];
  await refreshStaticMemberCounts(db, workspaceId);
  const { runs } = await runWhileRequested(db, { workspaceId }, log, async () => {
    const graph = await loadSegmentGraph(db, workspaceId);
    const dynamic = [...graph.values()].filter((n) => n.type === "dynamic").map((n) => n.id).sort();
    const order = dependencyOrder(graph, dynamic).filter((id) => graph.get(id)?.type === "dynamic");
    failed = [];
    for (const id of order) {
      try {
        const out = await recomputeOnce(db, workspaceId, id, log, opts);
        if (out) outcomes.push(out);
      } catch (err) {
        failed.push({ segmentId: id, error: (err as Error).message });
      }
    }
    return true;
  });
  return { outcomes, failed, passes: runs };
}

/**
 * Re-counts the members of the workspace's static segments. Imports add static members in their own batches
 * without touching the count; this brings the stored counts back to the truth, writing only the ones that differ.
 */
export async function refreshStaticMemberCounts(db: Db, workspaceId: string): Promise<number> {
  const rows = await db.execute<{ id: string }>(sql`
    update segments g set member_count = c.n, updated_at = now()
    from (select s.id, (select count(*) from segment_memberships m where m.segment_id = s.id) as n
          from segments s where s.workspace_id = ${workspaceId}::uuid and s.type = 'static') c
    where g.id = c.id and g.member_count is distinct from c.n
    returning g.id`);
  return rows.length;
}

/** Workspaces that have at least one dynamic segment (the nightly refresh's list). */
export async function workspacesWithDynamicSegments(db: Db): Promise<string[]> {
  const rows = await db.selectDistinct({ workspaceId: segments.workspaceId }).from(segments).where(eq(segments.type, "dynamic"));
  return rows.map((r) => r.workspaceId);
}
