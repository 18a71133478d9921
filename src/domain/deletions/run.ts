/**
 * Runs (or resumes) a deletion: takes it with a new fencing token, snapshots who matches (once), then erases the
 * snapshot in batches of people in id order, one transaction each that also removes the batch from the snapshot and
 * adds it to `deleted`. A crash loses at most the batch in flight, which the next run redoes from what is left; a
 * run that lost the fence (another run took the deletion) commits nothing more.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import type { Logger } from "../../lib/logger.js";
import type { Storage } from "../../storage/storage.js";
import { erasePeopleIn } from "../people/erase.js";
import { compileConditions, parseConditions } from "../segments/conditions.js";
import { purgeCopies } from "./copies.js";
import { takeDeletion, type DeletionRow } from "./lifecycle.js";

export type DeletionOutcome = "done" | "not_runnable" | "fence_lost" | "interrupted" | "failed";

export interface DeletionRunDeps {
  db: Db;
  storage: Storage;
  log: Logger;
  batchSize: number;
  draftRetentionHours: number;
  /** Called after each committed batch with the people erased so far (job progress, metrics). */
  onBatch?: (erased: number, total: number) => void;
}

class FenceLost extends Error {}

/** Locks the deletion row and checks that this run still holds it; every batch starts with it. */
async function holdFence(tx: Parameters<Parameters<Db["transaction"]>[0]>[0], run: DeletionRow): Promise<void> {
  const [row] = await tx.execute<{ fence: string; status: string }>(sql`select fence, status from deletions where id = ${run.id}::uuid for update`);
  if (!row || Number(row.fence) !== run.fence || row.status !== "processing") throw new FenceLost();
}

/** Who the selector matches, as SQL over `people p` of the workspace. */
function selectorPredicate(run: DeletionRow, now: Date) {
  const selector = run.selector ?? {};
  if (run.selectorKind === "segment") {
    return sql`exists (select 1 from segment_memberships m where m.segment_id = ${String(selector.segmentId)}::uuid and m.person_id = p.id)`;
  }
  return compileConditions(parseConditions(selector.conditions), { workspaceId: run.workspaceId, now });
}

/** Takes the snapshot (targets, matched) and clears the selector, in one transaction; dry runs only count. */
async function snapshot(db: Db, run: DeletionRow): Promise<void> {
  await db.transaction(async (tx) => {
    await holdFence(tx, run);
    const predicate = selectorPredicate(run, new Date());
    let matched: number;
    if (run.dryRun) {
      const [c] = await tx.execute<{ n: string }>(sql`select count(*) as n from people p where p.workspace_id = ${run.workspaceId}::uuid and ${predicate}`);
      matched = Number(c?.n ?? 0);
    } else {
      const ins = await tx.execute(sql`
        insert into deletion_targets (deletion_id, person_id)
        select ${run.id}::uuid, p.id from people p where p.workspace_id = ${run.workspaceId}::uuid and ${predicate}
        on conflict do nothing`);
      matched = ins.count;
    }
    // The selector may name people (an email in the conditions): it is not kept once it has done its work.
    await tx.execute(sql`update deletions set matched = ${matched}, selector = null, updated_at = now() where id = ${run.id}::uuid`);
  });
}

/** One batch: erase the next people of the snapshot; the number erased, or null when the snapshot is worked off. */
async function eraseBatch(db: Db, run: DeletionRow, batchSize: number): Promise<number | null> {
  return db.transaction(async (tx) => {
    await holdFence(tx, run);
    const next = await tx.execute<{ person_id: string }>(sql`
      select person_id from deletion_targets where deletion_id = ${run.id}::uuid order by person_id limit ${batchSize}`);
    if (!next.length) return null;
    const ids = next.map((r) => Number(r.person_id));
    // People gone meanwhile (erased by another request) are dropped from the snapshot and not counted as deleted.
    const erased = await erasePeopleIn(tx, run.workspaceId, ids);
    await tx.execute(sql`
      delete from deletion_targets where deletion_id = ${run.id}::uuid
        and person_id in (select x::bigint from jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) x)`);
    await tx.execute(sql`update deletions set deleted = deleted + ${erased.length}, updated_at = now() where id = ${run.id}::uuid`);
    return erased.length;
  });
}

export async function runDeletion(deps: DeletionRunDeps, ids: { workspaceId: string; deletionId: string }, signal?: AbortSignal): Promise<DeletionOutcome> {
  const taken = await takeDeletion(deps.db, ids);
  if (!taken) return "not_runnable";
  const log = deps.log.child({ deletionId: taken.id, workspaceId: taken.workspaceId, fence: taken.fence });
  try {
    if (taken.matched === null) {
      try {
        await snapshot(deps.db, taken);
      } catch (err) {
        if (err instanceof FenceLost) throw err;
        // Stored conditions the language no longer accepts, a segment deleted meanwhile: no retry can fix it.
        if ((err as { code?: string }).code === "invalid_conditions" || (err as { code?: string }).code === "23503") {
          await finish(deps.db, taken, "failed", `The selector cannot be evaluated: ${(err as Error).message}`);
          return "failed";
        }
        throw err;
      }
    }
    const [state] = await deps.db.execute<{ matched: string; deleted: string }>(sql`select matched, deleted from deletions where id = ${taken.id}::uuid`);
    const total = Number(state?.matched ?? 0);
    let deleted = Number(state?.deleted ?? 0);
    if (!taken.dryRun) {
      for (;;) {
        if (signal?.aborted) return "interrupted";
        const n = await eraseBatch(deps.db, taken, deps.batchSize);
        if (n === null) break;
        deleted += n;
        deps.onBatch?.(deleted, total);
      }
      if (deleted > 0) {
        const purged = await purgeCopies({ ...deps, log }, taken.workspaceId);
        log.info({ deleted, ...purged }, "people erased; uploads and export files of the workspace expired");
      }
    }
    await finish(deps.db, taken, "done");
    return "done";
  } catch (err) {
    if (err instanceof FenceLost) {
      log.warn("deletion taken over by a newer run; this run stops");
      return "fence_lost";
    }
    throw err;
  }
}

async function finish(db: Db, run: DeletionRow, status: "done" | "failed", reason?: string): Promise<void> {
  await db.transaction(async (tx) => {
    await holdFence(tx, run);
    await tx.execute(sql`
      update deletions set status = ${status}, failure_reason = ${reason ?? null}, selector = null, finished_at = now(), updated_at = now()
      where id = ${run.id}::uuid`);
    if (status === "failed") await tx.execute(sql`delete from deletion_targets where deletion_id = ${run.id}::uuid`);
  });
}
