/**
 * Erasing people: the one place that knows every table a person's data reaches. Used by DELETE /v1/users/:id and by
 * each batch of a deletion job, always inside one transaction, so a person is either wholly there or wholly gone.
 *
 * Segment bookkeeping: the memberships go and every segment's member_count drops by the members it lost (under the
 * segment's shared membership lock, as a real-time evaluation takes it, so a full recompute never interleaves). No
 * `segment.left` event is written: it would be an event row about the erased person, which the erase must not leave.
 * Nobody else's membership changes: conditions are evaluated per person, so removing one person moves no one else.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import type { Executor } from "../segments/graph.js";
import { lockSegmentMembership } from "../segments/membership-diff.js";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/**
 * `person_id in (…ids…)` with the ids as one array parameter (one bind however many). As `= any(array)` the planner
 * knows how many ids there are; from a jsonb list it guessed, and read all of segment_memberships for each batch.
 */
const idList = (ids: number[]) => sql`(select unnest(${`{${ids.join(",")}}`}::bigint[]))`;

/**
 * Erases the given people of the workspace in the caller's transaction: memberships (counts follow), events, import
 * ledger entries, stored identify responses, the sample rows of stored import responses that name them, then the
 * people (their labels are an array on the row). Ids of another
 * workspace or of no one are ignored. Returns the ids actually erased, ascending.
 */
export async function erasePeopleIn(tx: Tx, workspaceId: string, personIds: number[]): Promise<number[]> {
  const ids = [...new Set(personIds)].sort((a, b) => a - b);
  if (!ids.length) return [];
  // 1. Lock the people first, in id order (as import batches write them), so two erasers or an import never deadlock.
  const locked = await tx.execute<{ id: string; email: string | null; external_id: string | null; username: string | null }>(sql`
    select id, email, external_id, username from people where workspace_id = ${workspaceId}::uuid and id in ${idList(ids)} order by id for update`);
  const found = locked.map((r) => Number(r.id));
  if (!found.length) return [];
  // 2. Shared membership lock on every segment they belong to, in segment order: a recompute (exclusive) finishes first.
  const segs = await tx.execute<{ segment_id: string }>(sql`
    select distinct segment_id from segment_memberships where person_id in ${idList(found)} order by segment_id`);
  for (const s of segs) await lockSegmentMembership(tx as Executor, s.segment_id, "shared");
  // 3. Memberships, with each segment's count lowered by what it lost (incremental: concurrent evaluations add up).
  await tx.execute(sql`
    with gone as (
      delete from segment_memberships m where m.person_id in ${idList(found)} returning m.segment_id),
    lost as (select segment_id, count(*) as n from gone group by segment_id)
    update segments s set member_count = greatest(s.member_count - lost.n, 0) from lost where s.id = lost.segment_id`);
  // 4. Events, explicitly: the foreign key to people is going away (its check costs every event insert).
  await tx.execute(sql`delete from events where workspace_id = ${workspaceId}::uuid and person_id in ${idList(found)}`);
  // 5. A running import's ledger (not keyed by workspace: person ids are global). Labels are an array on the person.
  await tx.execute(sql`delete from import_people where person_id in ${idList(found)}`);
  // 5b. Imports' before-images of the person (kept for an undo) repeat their fields and segment values.
  await tx.execute(sql`delete from import_changes where person_id in ${idList(found)}`);
  await tx.execute(sql`delete from import_segment_joins where person_id in ${idList(found)}`);
  // 6. Stored identify responses (Idempotency-Key replays) repeat the person's fields.
  await tx.execute(sql`
    delete from idempotency_keys where workspace_id = ${workspaceId}::uuid and response_body ->> 'id' in (select x from jsonb_array_elements_text(${JSON.stringify(found.map(String))}::jsonb) x)`);
  // 6b. Stored import responses (POST /v1/imports with an Idempotency-Key) repeat the upload's sample rows. Those that
  // mention an erased person's email, external id or username lose the sample; the import's id and status stay, so a
  // replay still answers with the same import (its own sample is expired by the erase's purge of copies).
  const needles = [...new Set(locked.flatMap((r) => [r.email, r.external_id, r.username]).filter((v): v is string => Boolean(v)))];
  if (needles.length) {
    await tx.execute(sql`
      update idempotency_keys k set response_body = jsonb_set(k.response_body, '{sample}', '[]'::jsonb)
      where k.workspace_id = ${workspaceId}::uuid and jsonb_typeof(k.response_body -> 'sample') = 'array' and k.response_body -> 'sample' <> '[]'::jsonb
        and exists (
          select 1 from jsonb_array_elements(k.response_body -> 'sample') r, jsonb_array_elements_text(r) c,
            jsonb_array_elements_text(${JSON.stringify(needles)}::jsonb) n
          where strpos(lower(c), lower(n)) > 0)`);
  }
  await tx.execute(sql`delete from people where workspace_id = ${workspaceId}::uuid and id in ${idList(found)}`);
  return found;
}

/** Erases people in a transaction of its own; the ids actually erased. */
export async function erasePeople(db: Db, workspaceId: string, personIds: number[]): Promise<number[]> {
  return db.transaction((tx) => erasePeopleIn(tx, workspaceId, personIds));
}
