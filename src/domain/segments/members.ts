import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { people, segmentMemberships, segments } from "../../db/schema.js";
import { encodeIdCursor } from "../../lib/id-cursor.js";
import { ValidationError } from "../errors.js";
import { emailKey } from "../people/email.js";
import { p, parsePersonId, personView } from "../people/view.js";
import type { Executor } from "./graph.js";
import { getSegment } from "./service.js";
import { idAfter } from "../paging.js";

/** People named in one add/remove request. */
export const MAX_MEMBER_REFS = 1000;

export type PersonRef = { id: string } | { email: string } | { externalId: string };

/**
 * Finds the people of the workspace the references name: `each` is aligned with `refs` (undefined where a
 * reference names no one), `ids` the distinct people found, `notFound` the references that named no one.
 */
export async function resolvePeople(
  db: Executor,
  workspaceId: string,
  refs: PersonRef[],
): Promise<{ ids: number[]; notFound: PersonRef[]; each: (number | undefined)[] }> {
  const ids = refs.flatMap((r) => ("id" in r ? [parsePersonId(r.id)].filter((x): x is number => x !== null) : []));
  const emails = refs.flatMap((r) => ("email" in r ? [emailKey(r.email)] : []));
  const externalIds = refs.flatMap((r) => ("externalId" in r ? [r.externalId] : []));
  const rows = await db
    .select({ id: people.id, email: people.emailKey, externalId: people.externalId })
    .from(people)
    .where(
      and(
        eq(people.workspaceId, workspaceId),
        sql`(${ids.length ? inArray(people.id, ids) : sql`false`} or ${emails.length ? inArray(people.emailKey, emails) : sql`false`}
          or ${externalIds.length ? inArray(people.externalId, externalIds) : sql`false`})`,
      ),
    );
  const byId = new Set(rows.map((r) => r.id));
  const byEmail = new Map(rows.filter((r) => r.email).map((r) => [r.email!, r.id]));
  const byExternal = new Map(rows.filter((r) => r.externalId).map((r) => [r.externalId!, r.id]));
  const found = new Set<number>();
  const notFound: PersonRef[] = [];
  const each: (number | undefined)[] = [];
  for (const r of refs) {
    const id =
      "id" in r
        ? (() => {
            const n = parsePersonId(r.id);
            return n !== null && byId.has(n) ? n : undefined;
          })()
        : "email" in r
          ? byEmail.get(emailKey(r.email))
          : byExternal.get(r.externalId);
    each.push(id);
    if (id === undefined) notFound.push(r);
    else found.add(id);
  }
  return { ids: [...found].sort((a, b) => a - b), notFound, each };
}

function membershipEventProps(segment: { id: string; name: string }) {
  return JSON.stringify({ segmentId: segment.id, segmentName: segment.name });
}

/** Adds people to a static segment; each newly added person gets a `segment.entered` event. */
export async function addStaticMembers(db: Db, workspaceId: string, segmentId: string, refs: PersonRef[]) {
  return changeStaticMembers(db, workspaceId, segmentId, refs, "add");
}

/** Removes people from a static segment; each removed person gets a `segment.left` event. */
export async function removeStaticMembers(db: Db, workspaceId: string, segmentId: string, refs: PersonRef[]) {
  return changeStaticMembers(db, workspaceId, segmentId, refs, "remove");
}

async function changeStaticMembers(db: Db, workspaceId: string, segmentId: string, refs: PersonRef[], action: "add" | "remove") {
  return db.transaction(async (tx) => {
    const seg = await getSegment(tx, workspaceId, segmentId);
    if (seg.type !== "static") {
      throw new ValidationError("segment_not_static", "Members of a dynamic segment follow its conditions; only static segments take explicit members.");
    }
    const { ids, notFound } = await resolvePeople(tx, workspaceId, refs);
    const idsJson = JSON.stringify(ids);
    const props = membershipEventProps(seg);
    const [res] =
      action === "add"
        ? await tx.execute<{ n: number }>(sql`
          with changed as (
            insert into segment_memberships (workspace_id, segment_id, person_id)
            select ${workspaceId}::uuid, ${seg.id}::uuid, x::bigint from jsonb_array_elements_text(${idsJson}::jsonb) x
            on conflict do nothing
            returning person_id),
          ev as (
            insert into events (workspace_id, person_id, name, properties)
            select ${workspaceId}::uuid, person_id, 'segment.entered', ${props}::jsonb from changed)
          select count(*)::int as n from changed`)
        : await tx.execute<{ n: number }>(sql`
          with changed as (
            delete from segment_memberships m
            where m.segment_id = ${seg.id}::uuid and m.person_id in (select x::bigint from jsonb_array_elements_text(${idsJson}::jsonb) x)
            returning m.person_id),
          ev as (
            insert into events (workspace_id, person_id, name, properties)
            select ${workspaceId}::uuid, person_id, 'segment.left', ${props}::jsonb from changed)
          select count(*)::int as n from changed`);
    const n = Number(res?.n ?? 0);
    // Incremental, so concurrent changes add up under the row lock instead of overwriting each other.
    const delta = action === "add" ? n : -n;
    const [updated] = await tx
      .update(segments)
      .set({ memberCount: sql`${segments.memberCount} + ${delta}`, updatedAt: new Date() })
      .where(eq(segments.id, seg.id))
      .returning();
    return { segment: updated!, changed: n, notFound };
  });
}

/** Members of a segment, ordered by person id (keyset pagination), with their membership value and entry time. */
export async function listMembers(db: Db, workspaceId: string, segmentId: string, q: { limit: number; cursor?: string }) {
  const seg = await getSegment(db, workspaceId, segmentId);
  const after = idAfter(q.cursor);
  const rows = await db
    .select({ person: p, value: segmentMemberships.value, enteredAt: segmentMemberships.enteredAt })
    .from(segmentMemberships)
    .innerJoin(p, eq(p.id, segmentMemberships.personId))
    .where(and(eq(segmentMemberships.segmentId, seg.id), eq(segmentMemberships.workspaceId, workspaceId), gt(segmentMemberships.personId, after)))
    .orderBy(asc(segmentMemberships.personId))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    data: page.map((r) => ({ ...personView(r.person), value: r.value, enteredAt: r.enteredAt.toISOString() })),
    nextCursor: rows.length > q.limit && last ? encodeIdCursor(last.person.id) : null,
  };
}
