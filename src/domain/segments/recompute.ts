import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { compileConditions, parseConditions } from "./conditions.js";
import { dependencyOrder, loadSegmentGraph, type Executor } from "./graph.js";

/**
 * Set-based recompute of a dynamic segment: one statement computes the matching set, diffs it against the
 * stored membership, deletes who left, inserts who entered and writes a `segment.left` / `segment.entered`
 * event for each, all from one snapshot. Running it twice gives the same membership and no new events.
 */

/** A request that arrives while a recompute runs makes it run again; this bounds the re-runs of one job. */
const MAX_RERUNS = 5;

/** Serialises work on one segment's membership: recomputes take it exclusively, per-person evaluations shared. */
export async function lockSegmentMembership(tx: Executor, segmentId: string, mode: "exclusive" | "shared"): Promise<void> {
  const key = sql`hashtextextended(${`roster.segment-members:${segmentId}`}::text, 0)`;
  await tx.execute(mode === "exclusive" ? sql`select pg_advisory_xact_lock(${key})` : sql`select pg_advisory_xact_lock_shared(${key})`);
}

export interface RecomputeOutcome {
  segmentId: string;
  entered: number;
  left: number;
  memberCount: number;
  durationMs: number;
  runs: number;
  /** When the last run started (Postgres clock): a request stamped after it is not reflected in this outcome. */
  lastStartedAt: string;
}

/** Recomputes one dynamic segment (again while newer requests arrived during a run); null when it is gone or static. */
export async function recomputeSegment(db: Db, workspaceId: string, segmentId: string, log: Logger): Promise<RecomputeOutcome | null> {
  let entered = 0;
  let left = 0;
  for (let run = 1; ; run++) {
    const tStatus = performance.now();
    const [started] = await db
      .update(segments)
      .set({ status: "computing" })
      .where(and(eq(segments.id, segmentId), eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")))
      .returning({ name: segments.name, conditions: segments.conditions, startedAt: sql<string>`clock_timestamp()::text` });
    if (!started) return null;
    const t0 = performance.now();
    const phases: Record<string, number> = { status: Math.round(t0 - tStatus) };
    let tPhase = t0;
    const phase = (name: string) => {
      const t = performance.now();
      phases[name] = Math.round(t - tPhase);
      tPhase = t;
    };
    let outcome: { entered: number; left: number; memberCount: number; rerun: boolean; durationMs: number };
    try {
      outcome = await db.transaction(async (tx) => {
        phase("begin");
        await lockSegmentMembership(tx, segmentId, "exclusive");
        phase("lock");
        const now = new Date();
        const predicate = compileConditions(parseConditions(started.conditions), { workspaceId, now });
        const props = JSON.stringify({ segmentId, segmentName: started.name });
        const at = now.toISOString();
        // The matching set is computed once; one FULL JOIN with the current members (a join no planner can turn
        // into per-row loops, whatever its estimates) keeps only who enters or leaves, so an unchanged segment
        // writes nothing. Events go in person order, leavers first.
        const [diff] = await tx.execute<{ entered: number; left: number; member_count: number }>(sql`
          with matching as materialized (
            select p.id as person_id from people p where p.workspace_id = ${workspaceId}::uuid and ${predicate}),
          diff as materialized (
            select coalesce(s.person_id, c.person_id) as person_id, s.person_id is not null as entering
            from matching s
            full join (select m.person_id from segment_memberships m where m.segment_id = ${segmentId}::uuid) c on c.person_id = s.person_id
            where s.person_id is null or c.person_id is null),
          gone as (
            delete from segment_memberships m using diff d
            where m.segment_id = ${segmentId}::uuid and m.person_id = d.person_id and not d.entering
            returning m.person_id),
          came as (
            insert into segment_memberships (workspace_id, segment_id, person_id, entered_at)
            select ${workspaceId}::uuid, ${segmentId}::uuid, d.person_id, ${at}::timestamptz from diff d where d.entering order by d.person_id
            on conflict do nothing
            returning person_id),
          ev as (
            insert into events (workspace_id, person_id, name, properties, occurred_at)
            select ${workspaceId}::uuid, c.person_id, c.name, ${props}::jsonb, ${at}::timestamptz
            from (select person_id, 'segment.left' as name, 0 as ord from gone
                  union all
                  select person_id, 'segment.entered', 1 from came) c
            order by c.ord, c.person_id),
          counts as (
            select (select count(*) from matching) as matched, count(*) filter (where entering) as entering, count(*) filter (where not entering) as leaving
            from diff)
          -- The members after this statement: the members before it (matched - entering + leaving), less who left, plus who came.
          select (select count(*) from came)::int as entered, (select count(*) from gone)::int as left,
            (matched - entering + leaving - (select count(*) from gone) + (select count(*) from came))::int as member_count
          from counts`);
        phase("diff");
        const durationMs = Math.round(performance.now() - t0);
        const [done] = await tx.execute<{ member_count: number; rerun: boolean }>(sql`
          update segments set
            member_count = ${Number(diff?.member_count ?? 0)}::bigint,
            status = 'ready', failure_reason = null, last_computed_at = ${at}::timestamptz, last_duration_ms = ${durationMs}::int
          where id = ${segmentId}::uuid
          returning member_count::int as member_count, coalesce(recompute_requested_at > ${started.startedAt}::timestamptz, false) as rerun`);
        phase("finish");
        return { entered: Number(diff?.entered ?? 0), left: Number(diff?.left ?? 0), memberCount: Number(done?.member_count ?? 0), rerun: Boolean(done?.rerun), durationMs };
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
    entered += outcome.entered;
    left += outcome.left;
    log.info({ workspaceId, segmentId, run, entered: outcome.entered, left: outcome.left, memberCount: outcome.memberCount, durationMs: outcome.durationMs, phases }, "segment recomputed");
    if (!outcome.rerun || run >= MAX_RERUNS) {
      return { segmentId, entered, left, memberCount: outcome.memberCount, durationMs: outcome.durationMs, runs: run, lastStartedAt: started.startedAt };
    }
  }
}

/**
 * True when a recompute of the segment was requested after `since`. Checked by the job once its work is done: a
 * request that arrives after a run's last look at the stamp, while the job still holds its id, is absorbed by this
 * job (same job id) and would otherwise be lost.
 */
export async function requestedSince(db: Db, segmentId: string, since: string): Promise<boolean> {
  const [row] = await db.execute<{ again: boolean }>(sql`
    select coalesce(recompute_requested_at > ${since}::timestamptz, false) as again from segments where id = ${segmentId}::uuid`);
  return Boolean(row?.again);
}

/**
 * Recomputes every dynamic segment of the workspace, each after the segments it uses; failures do not stop the
 * rest. A request that arrives during a pass (an import finishing meanwhile: its enqueue was absorbed by this
 * job) is honoured by another pass when it stamped a segment this pass had already computed.
 */
export async function recomputeWorkspace(db: Db, workspaceId: string, log: Logger): Promise<{ outcomes: RecomputeOutcome[]; failed: { segmentId: string; error: string }[]; passes: number }> {
  const outcomes: RecomputeOutcome[] = [];
  let failed: { segmentId: string; error: string }[] = [];
  await refreshStaticMemberCounts(db, workspaceId);
  for (let pass = 1; ; pass++) {
    const [clock] = await db.execute<{ now: string }>(sql`select clock_timestamp()::text as now`);
    const passStartedAt = clock!.now;
    const graph = await loadSegmentGraph(db, workspaceId);
    const dynamic = [...graph.values()].filter((n) => n.type === "dynamic").map((n) => n.id).sort();
    const order = dependencyOrder(graph, dynamic).filter((id) => graph.get(id)?.type === "dynamic");
    failed = [];
    for (const id of order) {
      try {
        const out = await recomputeSegment(db, workspaceId, id, log);
        if (out) outcomes.push(out);
      } catch (err) {
        failed.push({ segmentId: id, error: (err as Error).message });
      }
    }
    const [again] = await db.execute<{ again: boolean }>(sql`
      select exists (select 1 from segments where workspace_id = ${workspaceId}::uuid and type = 'dynamic'
        and recompute_requested_at > ${passStartedAt}::timestamptz) as again`);
    if (!again?.again || pass >= MAX_RERUNS) return { outcomes, failed, passes: pass };
  }
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
