import { and, asc, eq, gt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { labels } from "../../db/schema.js";
import { encodeIdCursor } from "../../lib/id-cursor.js";
import { isUniqueViolation } from "../db-errors.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { idAfter } from "../paging.js";
import { parsePersonId } from "../people/view.js";
import { requestWorkspaceRecompute, type Enqueuer } from "../segments/triggers.js";

/**
 * The workspace's labels: list (with how many people hold each), create, rename, delete, merge. Names are
 * case-sensitive and unique per workspace. A person's labels are the sorted, distinct ids in people.label_ids, so a
 * delete or merge rewrites the arrays of the people holding the label (found through the GIN index) in the same
 * transaction as the label's own row. Segment conditions name labels by name: every rename, merge and delete asks
 * for a recompute of the workspace's dynamic segments.
 */

type LabelRow = { id: number; name: string; createdAt: Date; peopleCount: number };

export function labelView(row: LabelRow) {
  return { id: String(row.id), name: row.name, peopleCount: row.peopleCount, createdAt: row.createdAt.toISOString() };
}
export type LabelView = ReturnType<typeof labelView>;

/**
 * How many people hold the label: one GIN probe per label of the page (`label_ids @> array[id]`). A list page holds
 * at most `limit` labels, so this reads only their people; a grouped `unnest` would read every label array of the
 * workspace for every page.
 */
// Qualified by hand: drizzle names a single table's columns unqualified, which inside this subquery would be people's.
const peopleCount = sql<number>`(select count(*)::int from people p where p.workspace_id = "labels"."workspace_id" and p.label_ids @> array["labels"."id"]::bigint[])`;
const VIEW = { id: labels.id, name: labels.name, createdAt: labels.createdAt, peopleCount };

function nameTaken(err: unknown, name: string): never {
  if (isUniqueViolation(err)) throw new ConflictError("label_name_taken", `A label named "${name}" already exists (names are case-sensitive).`, { name });
  throw err;
}

function labelId(id: string): number {
  const n = parsePersonId(id);
  if (n === null) throw new NotFoundError("Label");
  return n;
}

/** Labels by id, oldest first, each with its people count. */
export async function listLabels(db: Db, workspaceId: string, q: { limit: number; cursor?: string }) {
  const after = idAfter(q.cursor);
  const rows = await db
    .select(VIEW)
    .from(labels)
    .where(and(eq(labels.workspaceId, workspaceId), gt(labels.id, after)))
    .orderBy(asc(labels.id))
    .limit(q.limit + 1);
  const data = rows.slice(0, q.limit);
  const last = data[data.length - 1];
  return { data: data.map(labelView), nextCursor: rows.length > q.limit && last ? encodeIdCursor(last.id) : null };
}

export async function getLabel(db: Db, workspaceId: string, id: string): Promise<LabelView> {
  const [row] = await db
    .select(VIEW)
    .from(labels)
    .where(and(eq(labels.id, labelId(id)), eq(labels.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Label");
  return labelView(row);
}

/** A new label; a name the workspace already has → 409 label_name_taken. */
export async function createLabel(db: Db, workspaceId: string, name: string): Promise<LabelView> {
  const [row] = await db
    .insert(labels)
    .values({ workspaceId, name })
    .returning({ id: labels.id, name: labels.name, createdAt: labels.createdAt })
    .catch((err: unknown) => nameTaken(err, name));
  return labelView({ ...row!, peopleCount: 0 });
}

/** Renames a label (people keep it: they hold its id); the dynamic segments naming labels are recomputed. */
export async function renameLabel(db: Db, producer: Enqueuer, workspaceId: string, id: string, name: string): Promise<LabelView> {
  const n = labelId(id);
  const [row] = await db
    .update(labels)
    .set({ name })
    .where(and(eq(labels.id, n), eq(labels.workspaceId, workspaceId)))
    .returning({ id: labels.id, name: labels.name })
    .catch((err: unknown) => nameTaken(err, name));
  if (!row) throw new NotFoundError("Label");
  await requestWorkspaceRecompute(db, producer, workspaceId);
  return getLabel(db, workspaceId, id);
}

/** Deletes a label and every person's link to it, in one transaction. */
export async function deleteLabel(db: Db, producer: Enqueuer, workspaceId: string, id: string): Promise<void> {
  const n = labelId(id);
  await db.transaction(async (tx) => {
    const [locked] = await tx.execute<{ id: string }>(sql`select id from labels where id = ${n} and workspace_id = ${workspaceId}::uuid for update`);
    if (!locked) throw new NotFoundError("Label");
    await tx.execute(sql`
      update people set label_ids = array_remove(label_ids, ${n}::bigint), updated_at = now()
      where workspace_id = ${workspaceId}::uuid and label_ids @> array[${n}::bigint]`);
    await tx.execute(sql`delete from labels where id = ${n} and workspace_id = ${workspaceId}::uuid`);
  });
  await requestWorkspaceRecompute(db, producer, workspaceId);
}

/**
 * Merges label `id` into `into`: each person holding `id` holds `into` once instead (the array stays sorted and
 * distinct), then `id` is deleted. Merging a label into itself → 422; either id not of the workspace → 404.
 */
export async function mergeLabel(db: Db, producer: Enqueuer, workspaceId: string, id: string, into: string): Promise<LabelView> {
  const from = labelId(id);
  const to = parsePersonId(into);
  if (to === from) throw new ValidationError("label_merge_into_itself", "A label cannot be merged into itself.", { id, into });
  await db.transaction(async (tx) => {
    // Both rows locked, in id order, so two merges of the same pair cannot deadlock.
    const found = await tx.execute<{ id: string }>(sql`
      select id::text from labels where workspace_id = ${workspaceId}::uuid and id = any(${`{${[from, to ?? 0].join(",")}}`}::bigint[]) order by id for update`);
    if (!found.some((r) => Number(r.id) === from)) throw new NotFoundError("Label");
    if (to === null || !found.some((r) => Number(r.id) === to)) throw new NotFoundError("Label (into)");
    await tx.execute(sql`
      update people set updated_at = now(), label_ids = (
        select array_agg(distinct x order by x) from unnest(array_append(array_remove(label_ids, ${from}::bigint), ${to}::bigint)) x)
      where workspace_id = ${workspaceId}::uuid and label_ids @> array[${from}::bigint]`);
    await tx.execute(sql`delete from labels where id = ${from} and workspace_id = ${workspaceId}::uuid`);
  });
  await requestWorkspaceRecompute(db, producer, workspaceId);
  return getLabel(db, workspaceId, String(to));
}
