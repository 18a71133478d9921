import { and, asc, desc, eq, gt, inArray, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { events, labels, segmentMemberships, segments } from "../../db/schema.js";
import { encodeIdCursor } from "../../lib/id-cursor.js";
import { NotFoundError } from "../errors.js";
import { compileConditions, parseConditions } from "../segments/conditions.js";
import { assertReferencedSegmentsExist } from "../segments/preview.js";
import { getSegment } from "../segments/service.js";
import { p, parsePersonId, personView } from "./view.js";
import { idAfter } from "../paging.js";

/** Events shown on a profile, newest first. */
export const PROFILE_RECENT_EVENTS = 20;

async function page(db: Db, workspaceId: string, filter: SQL | undefined, q: { limit: number; cursor?: string }) {
  const after = idAfter(q.cursor);
  const rows = await db
    .select()
    .from(p)
    .where(and(eq(p.workspaceId, workspaceId), gt(p.id, after), filter))
    .orderBy(asc(p.id))
    .limit(q.limit + 1);
  const data = rows.slice(0, q.limit);
  const last = data[data.length - 1];
  return { data: data.map(personView), nextCursor: rows.length > q.limit && last ? encodeIdCursor(last.id) : null };
}

/** People of the workspace by id, optionally only the members of one segment. */
export async function listPeople(db: Db, workspaceId: string, q: { segmentId?: string; limit: number; cursor?: string }) {
  let filter: SQL | undefined;
  if (q.segmentId) {
    const seg = await getSegment(db, workspaceId, q.segmentId);
    filter = sql`exists (select 1 from segment_memberships m where m.segment_id = ${seg.id}::uuid and m.person_id = ${p.id})`;
  }
  return page(db, workspaceId, filter, q);
}

/** People matching conditions (the segment language), evaluated now. */
export async function searchPeople(db: Db, workspaceId: string, q: { conditions: unknown; limit: number; cursor?: string }) {
  const condition = parseConditions(q.conditions);
  await assertReferencedSegmentsExist(db, workspaceId, condition);
  return page(db, workspaceId, compileConditions(condition, { workspaceId, now: new Date() }), q);
}

/** A person with labels, segment memberships (value, enteredAt) and recent events. */
export async function getProfile(db: Db, workspaceId: string, id: string) {
  const personId = parsePersonId(id);
  if (personId === null) throw new NotFoundError("User");
  const [person] = await db
    .select()
    .from(p)
    .where(and(eq(p.id, personId), eq(p.workspaceId, workspaceId)));
  if (!person) throw new NotFoundError("User");
  const [labelRows, segmentRows, eventRows] = await Promise.all([
    person.labelIds.length === 0
      ? Promise.resolve([])
      : db
          .select({ id: labels.id, name: labels.name })
          .from(labels)
          .where(and(inArray(labels.id, person.labelIds), eq(labels.workspaceId, workspaceId)))
          .orderBy(asc(labels.name)),
    db
      .select({ id: segments.id, name: segments.name, type: segments.type, value: segmentMemberships.value, enteredAt: segmentMemberships.enteredAt })
      .from(segmentMemberships)
      .innerJoin(segments, eq(segments.id, segmentMemberships.segmentId))
      .where(and(eq(segmentMemberships.personId, personId), eq(segments.workspaceId, workspaceId)))
      .orderBy(asc(segments.name)),
    db
      .select({ id: events.id, name: events.name, occurredAt: events.occurredAt, properties: events.properties })
      .from(events)
      .where(and(eq(events.personId, personId), eq(events.workspaceId, workspaceId)))
      .orderBy(desc(events.occurredAt), desc(events.id))
      .limit(PROFILE_RECENT_EVENTS),
  ]);
  return {
    ...personView(person),
    labels: labelRows.map((l) => ({ id: String(l.id), name: l.name })),
    segments: segmentRows.map((s) => ({ id: s.id, name: s.name, type: s.type, value: s.value, enteredAt: s.enteredAt.toISOString() })),
    recentEvents: eventRows.map((e) => ({ id: String(e.id), event: e.name, occurredAt: e.occurredAt.toISOString(), properties: e.properties })),
  };
}
