/**
 * Undoing a contacts import (POST /v1/imports/:id/undo): done / failed / cancelled ─▶ undoing ─▶ undone.
 *
 * The run (job `import.undo`, deletions queue, through the run wrapper) is fenced by the import's `fence` and resumes
 * from what is left, in batches, each one transaction holding the fence:
 * 1. people the import created (created_import_id), in id order past `undo.createdAfter`: erased when untouched since
 *    the import finished (below), `deleted`; else `kept`, with a `changed_since_import` error;
 * 2. people the import changed (import_changes, worked off as it goes): restored from their before-image (label ids
 *    of labels deleted since left out), with the
 *    static-segment joins the import made for them undone (below), when untouched since, `restored`; else `kept` with
 *    the error; people erased meanwhile are dropped;
 * 3. people the import only joined to a static segment (createSegment on people it left unchanged; import_segment_joins,
 *    worked off as it goes): their joins undone when untouched since, `restored`; else `kept` with the error;
 * 4. `undone`, then static counts are refreshed and a workspace segment recompute is requested (see the processor).
 * A join is undone by removing the membership the import created, or by putting back the value it replaced. A person
 * counts once, as a whole: "untouched since" means their row was not updated after the import finished, no event was
 * written for them since (but this import's and segment membership events), they entered no static segment since, and
 * every membership the import set is still as it left it (same value, not re-entered since); otherwise the person keeps
 * everything as it is now, fields and memberships (`kept`, `changed_since_import`). A join to a segment deleted since
 * has nothing left to undo.
 * Not undone: labels it added to the vocabulary, static segments it created (left, emptied of its joins), and the
 * person.updated events of restored people; no segment.left event is written for a removed join (the import wrote
 * no segment.entered for it).
 */
import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports, type ImportUndoState } from "../../db/schema.js";
import { importUndoJobId } from "../../queue/job-ids.js";
import { ConflictError, ValidationError } from "../errors.js";
import { erasePeopleIn } from "../people/erase.js";
import { isIn, olderThan, type Enqueuer, type FinalFailure, type RunKind, type RunRef, type StrandedRun } from "../runs.js";
import { getImport } from "./service.js";

type ImportRow = typeof imports.$inferSelect;
type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** An undo may be requested: the import's run ended for real. */
export const IMPORT_UNDOABLE = ["done", "failed", "cancelled"] as const;
export const UNDO_FINAL = ["undone"] as const;

export type UndoOutcome = "undone" | "not_runnable" | "fence_lost" | "interrupted";

export const undoView = (u: ImportUndoState | null) => (u ? { deleted: u.deleted, restored: u.restored, kept: u.kept } : null);

export async function enqueueImportUndo(producer: Enqueuer, run: RunRef): Promise<void> {
  await producer.enqueue("import.undo", { workspaceId: run.workspaceId, importId: run.id }, { jobId: importUndoJobId(run.id) });
}

/** Sets the import `undoing` and queues its run; a queue that is down puts the import back (503). */
export async function requestUndo(db: Db, producer: Enqueuer, workspaceId: string, id: string): Promise<ImportRow> {
  const row = await getImport(db, workspaceId, id);
  if (row.kind !== "contacts") {
    const why =
      row.kind === "members"
        ? "a team-member import cannot be undone: members may have signed in and changed their accounts since."
        : "an events import cannot be undone: its events are facts other records (segments, exports, webhooks) have already acted on.";
    throw new ValidationError("not_undoable_kind", `Only contacts imports can be undone; ${why}`);
  }
  if (!isIn(IMPORT_UNDOABLE, row.status) || row.dryRun) {
    throw new ConflictError("not_undoable", `The import is ${row.status}${row.dryRun ? " (a dry run)" : ""}; only a done, failed or cancelled import can be undone, once.`);
  }
  const state: ImportUndoState = row.undo ?? { deleted: 0, restored: 0, kept: 0, from: row.status, createdAfter: 0 };
  const [updated] = await db
    .update(imports)
    .set({ status: "undoing", undo: state, failureReason: null, updatedAt: new Date() })
    .where(and(eq(imports.id, row.id), eq(imports.workspaceId, workspaceId), eq(imports.status, row.status)))
    .returning();
  if (!updated) return requestUndo(db, producer, workspaceId, id);
  try {
    await enqueueImportUndo(producer, { workspaceId, id: row.id });
  } catch (err) {
    await db
      .update(imports)
      .set({ status: row.status, failureReason: row.failureReason })
      .where(and(eq(imports.id, row.id), eq(imports.status, "undoing")));
    throw err;
  }
  return updated;
}

class FenceLost extends Error {}

async function holdFence(tx: Tx, run: ImportRow): Promise<ImportUndoState> {
  const [row] = await tx.execute<{ fence: string; status: string; undo: ImportUndoState }>(
    sql`select fence, status, undo from imports where id = ${run.id}::uuid for update`,
  );
  if (!row || Number(row.fence) !== run.fence || row.status !== "undoing") throw new FenceLost();
  return row.undo;
}

async function takeUndo(db: Db, ids: { workspaceId: string; importId: string }): Promise<ImportRow | null> {
  const [taken] = await db
    .update(imports)
    .set({ fence: sql`${imports.fence} + 1`, updatedAt: new Date() })
    .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId), eq(imports.status, "undoing")))
    .returning();
  return taken ?? null;
}

const KEPT_REASONS = {
  changed_since_import: "This person, or a segment membership the import set, changed after the import finished; the undo left them as they are.",
  restore_conflict: "Another person has since taken this person's earlier email, external id or username; the undo left them as they are.",
} as const;

/** Errors for people the undo left as they are (row: the import row that created or first changed them). */
async function recordKept(tx: Tx, importId: string, kept: { person_id: number; row: number }[], code: keyof typeof KEPT_REASONS = "changed_since_import"): Promise<void> {
  if (!kept.length) return;
  await tx.execute(sql`
    insert into import_errors (import_id, row, seq, "column", value, code, message)
    select ${importId}::uuid, k.row,
      coalesce((select max(e.seq) from import_errors e where e.import_id = ${importId}::uuid and e.row = k.row), -1)
        + row_number() over (partition by k.row order by k.person_id),
      null, k.person_id::text, ${code}, ${KEPT_REASONS[code]}
    from jsonb_to_recordset(${JSON.stringify(kept)}::jsonb) as k(person_id bigint, row bigint)`);
  await tx.execute(sql`update imports set error_count = error_count + ${kept.length} where id = ${importId}::uuid`);
}

/**
 * How far past `createdAfter` (in ids) one batch of step 1 looks, per person it may take. A bounded id range is read
 * quickly whatever the planner believes: unbounded, with the statistics of a just-imported workspace still saying it
 * is small, each batch read the whole workspace and sorted it (1.1 s a batch at 1M people: a 1M undo took ~18 minutes).
 */
const CREATED_WINDOW_PER_ROW = 4;

/**
 * True for person `p` when something other than their row changed after the import finished, which updated_at does not
 * show: an event written since that is not this import's and not a segment's membership bookkeeping (POST /v1/events,
 * an events import; those move last_seen_at only to the event's own time), or a static-segment membership entered
 * since (added through the API or joined by another import, neither of which touches the person's row). Dynamic
 * memberships follow the person's data, so their changes (and their segment.* events) say nothing new.
 */
const touchedSince = (run: ImportRow, finishedAt: string) => sql`(exists (
    select 1 from events e
    where e.person_id = p.id and e.workspace_id = ${run.workspaceId}::uuid and e.created_at > ${finishedAt}::timestamptz
      and e.import_id is distinct from ${run.id}::uuid and e.name not like 'segment.%')
  or exists (
    select 1 from segment_memberships m join segments g on g.id = m.segment_id and g.type = 'static'
    where m.person_id = p.id and m.workspace_id = ${run.workspaceId}::uuid and m.entered_at > ${finishedAt}::timestamptz))`;

/** Changed since the import finished, as a whole: the row updated, or touchedSince. */
const changedSince = (run: ImportRow, finishedAt: string) => sql`(p.updated_at > ${finishedAt}::timestamptz or ${touchedSince(run, finishedAt)})`;

/** Step 1: the next batch of people the import created; false when none are left. */
async function createdBatch(db: Db, run: ImportRow, finishedAt: string, batchSize: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const state = await holdFence(tx, run);
    const windowEnd = state.createdAfter + batchSize * CREATED_WINDOW_PER_ROW;
    const next = await tx.execute<{ id: string; row: string | null; changed: boolean }>(sql`
      select p.id, p.created_import_row as row, ${changedSince(run, finishedAt)} as changed from people p
      where p.workspace_id = ${run.workspaceId}::uuid and p.id > ${state.createdAfter} and p.id <= ${windowEnd}
        and p.created_import_id = ${run.id}::uuid
      order by id limit ${batchSize} for update`);
    if (!next.length) {
      // None in this window: move past it while anyone (of any workspace: the primary key answers) has a larger id.
      const [more] = await tx.execute<{ more: boolean }>(sql`select exists (select 1 from people where id > ${windowEnd}) as more`);
      if (!more?.more) return false;
      await tx.update(imports).set({ undo: { ...state, createdAfter: windowEnd }, updatedAt: new Date() }).where(eq(imports.id, run.id));
      return true;
    }
    const kept = next.filter((r) => r.changed).map((r) => ({ person_id: Number(r.id), row: Number(r.row ?? 0) }));
    const erased = await erasePeopleIn(
      tx,
      run.workspaceId,
      next.filter((r) => !r.changed).map((r) => Number(r.id)),
    );
    await recordKept(tx, run.id, kept);
    const after: ImportUndoState = {
      ...state,
      deleted: state.deleted + erased.length,
      kept: state.kept + kept.length,
      createdAfter: Number(next[next.length - 1]!.id),
    };
    await tx.update(imports).set({ undo: after, updatedAt: new Date() }).where(eq(imports.id, run.id));
    return true;
  });
}

const FIELDS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "email_key"] as const;

/** `person_id in (…)` with the ids as one jsonb parameter. */
const idsIn = (ids: readonly (number | string)[]) => sql`(select x::bigint from jsonb_array_elements_text(${JSON.stringify(ids.map(Number))}::jsonb) x)`;

/**
 * True for person `p` when a static-segment join the import made for them is no longer as the import left it: the
 * membership is gone, holds another value, or was entered again after the import finished. A join to a segment
 * deleted since counts as untouched (nothing is left to undo).
 */
const joinsChangedSince = (run: ImportRow, finishedAt: string) => sql`exists (
  select 1 from import_segment_joins j
  where j.import_id = ${run.id}::uuid and j.person_id = p.id
    and exists (select 1 from segments g where g.id = j.segment_id and g.workspace_id = ${run.workspaceId}::uuid)
    and not exists (select 1 from segment_memberships m
      where m.segment_id = j.segment_id and m.person_id = j.person_id and m.workspace_id = ${run.workspaceId}::uuid
        and m.value is not distinct from j.after_value and m.entered_at <= ${finishedAt}::timestamptz))`;

/** Undoes the recorded joins of the given people: memberships the import created go, changed values come back. */
async function undoJoins(tx: Tx, run: ImportRow, personIds: number[]): Promise<void> {
  if (!personIds.length) return;
  await tx.execute(sql`
    with j as (
      select * from import_segment_joins where import_id = ${run.id}::uuid and person_id in ${idsIn(personIds)}),
    gone as (
      delete from segment_memberships m using j
      where not j.was_member and m.segment_id = j.segment_id and m.person_id = j.person_id and m.workspace_id = ${run.workspaceId}::uuid)
    update segment_memberships m set value = j.before_value from j
    where j.was_member and m.segment_id = j.segment_id and m.person_id = j.person_id and m.workspace_id = ${run.workspaceId}::uuid`);
}

/** Step 2: the next batch of people the import changed, restored from their before-image; false when none are left. */
async function changedBatch(db: Db, run: ImportRow, finishedAt: string, batchSize: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const state = await holdFence(tx, run);
    const next = await tx.execute<{ person_id: string; row: string }>(sql`
      select person_id, row from import_changes where import_id = ${run.id}::uuid order by person_id limit ${batchSize}`);
    if (!next.length) return false;
    const ids = JSON.stringify(next.map((r) => Number(r.person_id)));
    const idList = sql`(select x::bigint from jsonb_array_elements_text(${ids}::jsonb) x)`;
    const people = await tx.execute<{ id: string; changed: boolean }>(sql`
      select id, (${changedSince(run, finishedAt)} or ${joinsChangedSince(run, finishedAt)}) as changed from people p
      where workspace_id = ${run.workspaceId}::uuid and id in ${idList} order by id for update`);
    const untouched = people.filter((p) => !p.changed).map((p) => Number(p.id));
    const changed = new Set(people.filter((p) => p.changed).map((p) => p.id));
    const kept = next.filter((r) => changed.has(r.person_id)).map((r) => ({ person_id: Number(r.person_id), row: Number(r.row) }));
    // An earlier identifier someone else holds now cannot be given back (the unique indexes would fail the batch on
    // every retry): that person is kept as they are, and says why. One probe of each unique index per person (a single
    // exists with the three ORed compared every person of the workspace with every restored one: minutes at 1M).
    const taken = untouched.length
      ? await tx.execute<{ person_id: string }>(sql`
          select c.person_id from import_changes c
          where c.import_id = ${run.id}::uuid
            and c.person_id in (select x::bigint from jsonb_array_elements_text(${JSON.stringify(untouched)}::jsonb) x)
            and (${sql.join(
              (["email_key", "external_id", "username"] as const).map(
                (f) => sql`exists (select 1 from people o where o.workspace_id = ${run.workspaceId}::uuid and o.${sql.raw(f)} = c.before ->> ${f} and o.id <> c.person_id)`,
              ),
              sql` or `,
            )})`)
      : [];
    const conflicted = new Set(taken.map((t) => Number(t.person_id)));
    const restore = untouched.filter((id) => !conflicted.has(id));
    const conflicts = next.filter((r) => conflicted.has(Number(r.person_id))).map((r) => ({ person_id: Number(r.person_id), row: Number(r.row) }));
    if (restore.length) {
      await tx.execute(sql`
        update people p set
          ${sql.raw(FIELDS.map((f) => `${f} = c.before ->> '${f}'`).join(", "))},
          attributes = coalesce(c.before -> 'attributes', '{}'::jsonb),
          label_ids = coalesce(array(
            select x::bigint from jsonb_array_elements_text(c.before -> 'label_ids') x
            where exists (select 1 from labels l where l.id = x::bigint and l.workspace_id = ${run.workspaceId}::uuid) order by 1), '{}'),
          updated_at = now()
        from import_changes c
        where c.import_id = ${run.id}::uuid and c.person_id = p.id
          and p.id in (select x::bigint from jsonb_array_elements_text(${JSON.stringify(restore)}::jsonb) x)`);
      await undoJoins(tx, run, restore);
    }
    await recordKept(tx, run.id, kept);
    await recordKept(tx, run.id, conflicts, "restore_conflict");
    await tx.execute(sql`delete from import_changes where import_id = ${run.id}::uuid and person_id in ${idList}`);
    await tx.execute(sql`delete from import_segment_joins where import_id = ${run.id}::uuid and person_id in ${idList}`);
    const after: ImportUndoState = { ...state, restored: state.restored + restore.length, kept: state.kept + kept.length + conflicts.length };
    await tx.update(imports).set({ undo: after, updatedAt: new Date() }).where(eq(imports.id, run.id));
    return true;
  });
}

/**
 * Step 3: the next batch of people whose only record is a static-segment join (import_changes is worked off by now):
 * their joins undone when untouched since (the same test as step 2: the person as a whole), `restored`; else `kept`;
 * people erased meanwhile are dropped.
 */
async function joinsBatch(db: Db, run: ImportRow, finishedAt: string, batchSize: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const state = await holdFence(tx, run);
    const next = await tx.execute<{ person_id: string; row: string }>(sql`
      select person_id, min(row) as row from import_segment_joins where import_id = ${run.id}::uuid
      group by person_id order by person_id limit ${batchSize}`);
    if (!next.length) return false;
    const idList = idsIn(next.map((r) => r.person_id));
    // Locked in id order, as every other writer of people does, so a concurrent import's batch orders before or after.
    const people = await tx.execute<{ id: string; changed: boolean }>(sql`
      select id, (${changedSince(run, finishedAt)} or ${joinsChangedSince(run, finishedAt)}) as changed from people p
      where workspace_id = ${run.workspaceId}::uuid and id in ${idList} order by id for update`);
    const restore = people.filter((p) => !p.changed).map((p) => Number(p.id));
    const changed = new Set(people.filter((p) => p.changed).map((p) => p.id));
    const kept = next.filter((r) => changed.has(r.person_id)).map((r) => ({ person_id: Number(r.person_id), row: Number(r.row) }));
    await undoJoins(tx, run, restore);
    await recordKept(tx, run.id, kept);
    await tx.execute(sql`delete from import_segment_joins where import_id = ${run.id}::uuid and person_id in ${idList}`);
    const after: ImportUndoState = { ...state, restored: state.restored + restore.length, kept: state.kept + kept.length };
    await tx.update(imports).set({ undo: after, updatedAt: new Date() }).where(eq(imports.id, run.id));
    return true;
  });
}

export async function runUndo(
  deps: { db: Db; batchSize: number },
  ids: { workspaceId: string; importId: string },
  signal?: AbortSignal,
): Promise<UndoOutcome> {
  const taken = await takeUndo(deps.db, ids);
  if (!taken) return "not_runnable";
  // An import that never ran (cancelled while queued) has no finish time worth more than now: nothing it wrote is newer.
  // Read as text: the database's microseconds, which the times it is compared with (updated_at, entered_at) carry too.
  const [fin] = await deps.db.execute<{ at: string }>(sql`select coalesce(finished_at, now())::text as at from imports where id = ${taken.id}::uuid`);
  const finishedAt = fin!.at;
  try {
    for (const step of [createdBatch, changedBatch, joinsBatch]) {
      for (;;) {
        if (signal?.aborted) return "interrupted";
        if (!(await step(deps.db, taken, finishedAt, deps.batchSize))) break;
      }
    }
    await deps.db.transaction(async (tx) => {
      await holdFence(tx, taken);
      await tx.update(imports).set({ status: "undone", updatedAt: new Date() }).where(eq(imports.id, taken.id));
    });
    return "undone";
  } catch (err) {
    if (err instanceof FenceLost) return "fence_lost";
    throw err;
  }
}

/** An undo run that will not run again: the import goes back to the status it was undone from, saying why; a new request resumes. */
export async function failUndo(db: Db, run: RunRef, failure: FinalFailure): Promise<boolean> {
  const why = failure.cause === "attempts" ? `after ${failure.attempts} attempts: ${failure.message}` : (failure.message ?? "its job failed");
  const rows = await db
    .update(imports)
    .set({
      status: sql`${imports.undo} ->> 'from'`,
      failureReason: `The undo stopped ${why}. What it did so far stays; request the undo again to carry on.`,
      updatedAt: new Date(),
    })
    .where(and(eq(imports.id, run.id), eq(imports.workspaceId, run.workspaceId), eq(imports.status, "undoing")))
    .returning({ id: imports.id });
  return rows.length > 0;
}

async function strandedUndos(db: Db, graceMs: number): Promise<StrandedRun[]> {
  const rows = await db
    .select({ id: imports.id, workspaceId: imports.workspaceId, status: imports.status })
    .from(imports)
    .where(and(inArray(imports.status, ["undoing"]), lt(imports.updatedAt, olderThan(graceMs))));
  return rows.map((r) => ({ ...r, jobIds: [importUndoJobId(r.id)] }));
}

export const importUndoRuns: RunKind = {
  name: "import-undos",
  noun: "undo",
  queues: ["deletions"],
  final: UNDO_FINAL,
  fail: failUndo,
  stranded: strandedUndos,
  // Fenced and resumable: a rerun under the same job id carries on from what is left.
  requeue: async (_db, producer, run) => {
    await enqueueImportUndo(producer, run);
    return true;
  },
  reusesJobId: true,
};
