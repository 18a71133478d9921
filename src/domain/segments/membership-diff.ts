import { sql, type SQL } from "drizzle-orm";
import type { Executor } from "./graph.js";

/**
 * The one membership diff of a dynamic segment, used by the full recompute (everyone in the workspace) and by the
 * real-time evaluation after identify / track (only the people given). One statement computes who matches now,
 * compares that with the stored members, deletes who left, inserts who entered and writes a `segment.left` /
 * `segment.entered` event for each, all from one snapshot: running it twice gives the same membership and no new
 * events. The segment row (member count, status) is the caller's to write.
 */

/** Serialises work on one segment's membership: recomputes take it exclusively, per-person evaluations shared. */
export async function lockSegmentMembership(tx: Executor, segmentId: string, mode: "exclusive" | "shared"): Promise<void> {
  const key = sql`hashtextextended(${`roster.segment-members:${segmentId}`}::text, 0)`;
  await tx.execute(mode === "exclusive" ? sql`select pg_advisory_xact_lock(${key})` : sql`select pg_advisory_xact_lock_shared(${key})`);
}

export interface MembershipDiffInput {
  workspaceId: string;
  segment: { id: string; name: string };
  /** The segment's compiled conditions over `people p`. */
  predicate: SQL;
  /** Entry time of new members and time of the events. */
  at: Date;
  /** Only these people (the real-time evaluation); everyone in the workspace when absent. */
  personIds?: number[];
}

export interface MembershipDiff {
  entered: number;
  left: number;
  /** Members after the diff among the people it covered: the segment's member count when it covered everyone. */
  members: number;
  /** Who entered and who left (person ids, ascending); only for a diff over given people, empty otherwise. */
  enteredIds: string[];
  leftIds: string[];
}

/** Applies the diff for one segment; the caller holds the segment's membership lock in the same transaction. */
export async function diffMembership(tx: Executor, input: MembershipDiffInput): Promise<MembershipDiff> {
  const { workspaceId, segment, predicate } = input;
  const props = JSON.stringify({ segmentId: segment.id, segmentName: segment.name });
  const at = input.at.toISOString();
  const scoped = input.personIds !== undefined;
  const ids = JSON.stringify([...new Set(input.personIds ?? [])].sort((a, b) => a - b));
  // Literal `true` when unscoped: the planner folds it away, so the full recompute's plan is the unscoped one.
  const inPeople = scoped ? sql`p.id in (select x::bigint from jsonb_array_elements_text(${ids}::jsonb) x)` : sql`true`;
  const inMembers = scoped ? sql`m.person_id in (select x::bigint from jsonb_array_elements_text(${ids}::jsonb) x)` : sql`true`;
  // Ids go back only for a handful of people: a full recompute may move hundreds of thousands.
  const changedIds = scoped
    ? sql`(select coalesce(jsonb_agg(person_id::text order by person_id), '[]') from came) as entered_ids,
        (select coalesce(jsonb_agg(person_id::text order by person_id), '[]') from gone) as left_ids`
    : sql`'[]'::jsonb as entered_ids, '[]'::jsonb as left_ids`;
  // The matching set is computed once; one FULL JOIN with the current members (a join no planner can turn into
  // per-row loops, whatever its estimates) keeps only who enters or leaves, so an unchanged segment writes nothing.
  // Events go in person order, leavers first.
  const [row] = await tx.execute<{ entered: number; left: number; members: number; entered_ids: string[]; left_ids: string[] }>(sql`
    with matching as materialized (
      select p.id as person_id from people p where p.workspace_id = ${workspaceId}::uuid and ${inPeople} and ${predicate}),
    diff as materialized (
      select coalesce(s.person_id, c.person_id) as person_id, s.person_id is not null as entering
      from matching s
      full join (select m.person_id from segment_memberships m where m.segment_id = ${segment.id}::uuid and ${inMembers}) c on c.person_id = s.person_id
      where s.person_id is null or c.person_id is null),
    gone as (
      delete from segment_memberships m using diff d
      where m.segment_id = ${segment.id}::uuid and m.person_id = d.person_id and not d.entering
      returning m.person_id),
    came as (
      insert into segment_memberships (workspace_id, segment_id, person_id, entered_at)
      select ${workspaceId}::uuid, ${segment.id}::uuid, d.person_id, ${at}::timestamptz from diff d where d.entering order by d.person_id
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
      (matched - entering + leaving - (select count(*) from gone) + (select count(*) from came))::int as members,
      ${changedIds}
    from counts`);
  return {
    entered: Number(row?.entered ?? 0),
    left: Number(row?.left ?? 0),
    members: Number(row?.members ?? 0),
    enteredIds: row?.entered_ids ?? [],
    leftIds: row?.left_ids ?? [],
  };
}
