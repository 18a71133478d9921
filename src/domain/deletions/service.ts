import { and, desc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.js";
import { deletions, type DeletionStatus } from "../../db/schema.js";
import { decodeCursor, encodeCursor } from "../../lib/cursor.js";
import { isUuid } from "../../lib/uuid.js";
import type { Producer } from "../../queue/producer.js";
import { NotFoundError, ValidationError } from "../errors.js";
import { emailKey } from "../people/email.js";
import { parsePersonId } from "../people/view.js";
import { parseConditions } from "../segments/conditions.js";
import { assertReferencedSegmentsExist } from "../segments/preview.js";
import { getSegment } from "../segments/service.js";
import { enqueueDeletionRun, type DeletionRow } from "./lifecycle.js";

/** People named in one request; more go through a segment or conditions. */
export const MAX_DELETION_REFS = 10_000;

const userRef = z.union([
  z.object({ id: z.string().min(1).max(40) }).strict(),
  z.object({ email: z.string().min(1).max(320) }).strict(),
  z.object({ externalId: z.string().min(1).max(1000) }).strict(),
  z.object({ username: z.string().min(1).max(1000) }).strict(),
]);

export const createDeletionSchema = z
  .object({
    users: z.array(userRef).min(1).max(MAX_DELETION_REFS).optional(),
    segmentId: z.string().optional(),
    conditions: z.unknown().optional(),
    dryRun: z.boolean().default(false),
  })
  .strict();
export type CreateDeletionInput = z.infer<typeof createDeletionSchema>;

/** The deletion as the API shows it (API.md "Deletion, undo and retention"). */
export function deletionView(row: DeletionRow) {
  return {
    id: row.id,
    status: row.status,
    selector: row.selectorKind,
    dryRun: row.dryRun,
    matched: row.matched,
    deleted: row.deleted,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    failureReason: row.failureReason,
  };
}

type UserRef = z.infer<typeof userRef>;

/** The ids of the workspace's people the references name (one statement; references naming no one count for nothing). */
async function resolveUserRefs(db: Db, workspaceId: string, refs: UserRef[]): Promise<number[]> {
  const ids = refs.flatMap((r) => ("id" in r ? [parsePersonId(r.id)].filter((x): x is number => x !== null) : []));
  // The same key the unique index and every other match use (src/domain/people/email.ts).
  const emails = refs.flatMap((r) => ("email" in r ? [emailKey(r.email)] : []));
  const externalIds = refs.flatMap((r) => ("externalId" in r ? [r.externalId] : []));
  const usernames = refs.flatMap((r) => ("username" in r ? [r.username] : []));
  const list = (xs: unknown[]) => sql`(select jsonb_array_elements_text(${JSON.stringify(xs)}::jsonb))`;
  const rows = await db.execute<{ id: string }>(sql`
    select id from people where workspace_id = ${workspaceId}::uuid and (
      id in (select x::bigint from ${list(ids)} as t(x))
      or email_key in ${list(emails)}
      or external_id in ${list(externalIds)}
      or username in ${list(usernames)})
    order by id`);
  return rows.map((r) => Number(r.id));
}

/**
 * Records a deletion and queues its job. Exactly one selector. People named in `users` are resolved now and only
 * their ids are kept (matched is known at once); a segment or conditions are checked now and resolved by the run.
 * When the queue is down nothing is kept (503): the client never learnt the deletion's id.
 */
export async function createDeletion(db: Db, producer: Pick<Producer, "enqueue">, workspaceId: string, input: CreateDeletionInput): Promise<DeletionRow> {
  const given = (["users", "segmentId", "conditions"] as const).filter((k) => input[k] !== undefined);
  if (given.length !== 1) {
    throw new ValidationError("one_selector_required", "Give exactly one of users, segmentId or conditions.", { given });
  }
  let row: DeletionRow;
  if (input.users) {
    const personIds = await resolveUserRefs(db, workspaceId, input.users);
    row = await db.transaction(async (tx) => {
      const [created] = await tx
        .insert(deletions)
        .values({ workspaceId, selectorKind: "users", selector: null, dryRun: input.dryRun, matched: personIds.length })
        .returning();
      if (!input.dryRun && personIds.length) {
        await tx.execute(sql`
          insert into deletion_targets (deletion_id, person_id)
          select ${created!.id}::uuid, x::bigint from jsonb_array_elements_text(${JSON.stringify(personIds)}::jsonb) x`);
      }
      return created!;
    });
  } else if (input.segmentId !== undefined) {
    const seg = await getSegment(db, workspaceId, input.segmentId);
    [row] = (await db.insert(deletions).values({ workspaceId, selectorKind: "segment", selector: { segmentId: seg.id }, dryRun: input.dryRun }).returning()) as [DeletionRow];
  } else {
    const condition = parseConditions(input.conditions);
    await assertReferencedSegmentsExist(db, workspaceId, condition);
    [row] = (await db.insert(deletions).values({ workspaceId, selectorKind: "conditions", selector: { conditions: input.conditions }, dryRun: input.dryRun }).returning()) as [DeletionRow];
  }
  try {
    await enqueueDeletionRun(producer, row);
  } catch (err) {
    await db.delete(deletions).where(eq(deletions.id, row.id));
    throw err;
  }
  return row;
}

export async function getDeletion(db: Db, workspaceId: string, id: string): Promise<DeletionRow> {
  if (!isUuid(id)) throw new NotFoundError("Deletion");
  const [row] = await db.select().from(deletions).where(and(eq(deletions.id, id), eq(deletions.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Deletion");
  return row;
}

export async function listDeletions(db: Db, workspaceId: string, q: { status?: DeletionStatus; limit: number; cursor?: string }) {
  const conds = [eq(deletions.workspaceId, workspaceId)];
  if (q.status) conds.push(eq(deletions.status, q.status));
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new ValidationError("invalid_cursor", "The cursor is not one this API returned.");
    conds.push(sql`(date_trunc('milliseconds', ${deletions.createdAt}), ${deletions.id}) < (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid)`);
  }
  const rows = await db
    .select()
    .from(deletions)
    .where(and(...conds))
    .orderBy(desc(sql`date_trunc('milliseconds', ${deletions.createdAt})`), desc(deletions.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return { data: page.map(deletionView), nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null };
}
