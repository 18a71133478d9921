import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { compileConditions, parseConditions } from "./conditions.js";
import { dependencyOrder, loadSegmentGraph } from "./graph.js";
import { lockSegmentMembership } from "./recompute.js";

/**
 * Real-time evaluation: after identify or track, the dynamic segments of the workspace are re-evaluated for
 * just the people concerned (the same diff as a recompute, restricted to their ids), in dependency order so a
 * composed segment sees the membership its inputs just got. Memberships change and `segment.entered` /
 * `segment.left` events are written at once; no full recompute runs.
 *
 * Each segment is taken with a shared lock: evaluations for different people run side by side, while a full
 * recompute (exclusive) of that segment finishes first, so neither overwrites the other's view.
 */

export interface MembershipChange {
  segmentId: string;
  personId: string;
}

export async function evaluatePeople(db: Db, workspaceId: string, personIds: number[], log: Pick<Logger, "info" | "warn">, now = new Date()): Promise<{ entered: MembershipChange[]; left: MembershipChange[] }> {
  const entered: MembershipChange[] = [];
  const left: MembershipChange[] = [];
  if (!personIds.length) return { entered, left };
  const graph = await loadSegmentGraph(db, workspaceId);
  const dynamicIds = [...graph.values()].filter((n) => n.type === "dynamic").map((n) => n.id).sort();
  if (!dynamicIds.length) return { entered, left };
  const order = dependencyOrder(graph, dynamicIds).filter((id) => graph.get(id)?.type === "dynamic");
  const rows = await db
    .select({ id: segments.id, name: segments.name, conditions: segments.conditions })
    .from(segments)
    .where(and(eq(segments.workspaceId, workspaceId), eq(segments.type, "dynamic")));
  const byId = new Map(rows.map((r) => [r.id, r]));
  const ids = JSON.stringify([...new Set(personIds)].sort((a, b) => a - b));

  await db.transaction(async (tx) => {
    for (const segmentId of order) {
      const seg = byId.get(segmentId);
      if (!seg) continue;
      let predicate;
      try {
        predicate = compileConditions(parseConditions(seg.conditions), { workspaceId, now });
      } catch (err) {
        // A stored tree the language no longer accepts: its recompute reports the failure on the segment.
        log.warn({ segmentId, err: (err as Error).message }, "segment skipped in real-time evaluation");
        continue;
      }
      await lockSegmentMembership(tx, segmentId, "shared");
      const props = JSON.stringify({ segmentId, segmentName: seg.name });
      const at = now.toISOString();
      const changes = await tx.execute<{ kind: "entered" | "left"; person_id: string }>(sql`
        with candidates as (
          select x::bigint as person_id from jsonb_array_elements_text(${ids}::jsonb) x),
        matching as (
          select p.id as person_id from people p
          where p.workspace_id = ${workspaceId}::uuid and p.id in (select person_id from candidates) and ${predicate}),
        gone as (
          delete from segment_memberships m
          where m.segment_id = ${segmentId}::uuid and m.person_id in (select person_id from candidates)
            and not exists (select 1 from matching s where s.person_id = m.person_id)
          returning m.person_id),
        came as (
          insert into segment_memberships (workspace_id, segment_id, person_id, entered_at)
          select ${workspaceId}::uuid, ${segmentId}::uuid, person_id, ${at}::timestamptz from matching
          on conflict do nothing
          returning person_id),
        ev as (
          insert into events (workspace_id, person_id, name, properties, occurred_at)
          select ${workspaceId}::uuid, person_id, 'segment.left', ${props}::jsonb, ${at}::timestamptz from gone
          union all
          select ${workspaceId}::uuid, person_id, 'segment.entered', ${props}::jsonb, ${at}::timestamptz from came),
        counted as (
          update segments set member_count = member_count + (select count(*) from came) - (select count(*) from gone)
          where id = ${segmentId}::uuid and ((select count(*) from came) > 0 or (select count(*) from gone) > 0))
        select 'entered' as kind, person_id::text as person_id from came
        union all
        select 'left', person_id::text from gone`);
      for (const c of changes) (c.kind === "entered" ? entered : left).push({ segmentId, personId: c.person_id });
    }
  });
  if (entered.length || left.length) log.info({ workspaceId, entered: entered.length, left: left.length }, "segments re-evaluated in real time");
  return { entered, left };
}
