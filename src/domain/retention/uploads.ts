/**
 * How long an import's upload lives. An import's stored file, its sample rows and its failed rows' cells are one
 * copy of what the client sent: they go together, when the import ended plus UPLOAD_RETENTION_HOURS (a team-member
 * import's file at once: passwords must not rest on disk; its cells, passwords redacted, with the retention), or with the whole draft when a draft sits untouched for
 * DRAFT_RETENTION_HOURS. An import whose upload expired keeps its counts and its error rows (row, column, code,
 * message); it can no longer be started or validated (409 upload_expired).
 *
 * Each expiry is one transaction that marks the row and deletes the file before it commits: a crash before the commit
 * leaves the row unmarked and the next sweep deletes the (possibly already missing) file again, so nothing leaks and
 * nothing is marked expired while its file still exists.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import type { ImportStatus } from "../../db/schema.js";
import type { Storage } from "../../storage/storage.js";
import { IMPORT_EDITABLE, IMPORT_ENDED } from "../imports/lifecycle.js";

/** Imports never started for real (a dry run at most): deleted whole once idle for DRAFT_RETENTION_HOURS. */
const IMPORT_NOT_STARTED = IMPORT_EDITABLE;

const HOUR_MS = 3600 * 1000;

export interface RetentionSettings {
  uploadRetentionHours: number;
  draftRetentionHours: number;
}

type UploadDeps = { db: Db; storage: Pick<Storage, "delete"> };

const statusList = (statuses: readonly string[]) => sql.raw(statuses.map((s) => `'${s}'`).join(", "));

/**
 * Deletes one import's upload if the import is in one of `statuses`: the file (if still there) and, unless
 * `keepCells`, the sample rows and failed rows' cells. True when this call deleted anything.
 */
export async function expireImportUpload(
  deps: UploadDeps,
  importId: string,
  opts: { statuses?: readonly ImportStatus[]; keepCells?: boolean } = {},
): Promise<boolean> {
  const statuses = opts.statuses ?? IMPORT_ENDED;
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.execute<{ storage_key: string; file: boolean; cells: boolean }>(sql`
      select storage_key, upload_expired_at is null as file, cells_expired_at is null as cells from imports
      where id = ${importId}::uuid and status in (${statusList(statuses)}) and (upload_expired_at is null or cells_expired_at is null)
      for update`);
    if (!row) return false;
    const clearCells = row.cells && !opts.keepCells;
    if (!row.file && !clearCells) return false;
    if (clearCells) {
      // The report keeps row, column, code and message; the cells (and the offending value) were the upload's.
      await tx.execute(sql`update import_errors set record = null, value = null where import_id = ${importId}::uuid and (record is not null or value is not null)`);
      await tx.execute(sql`update imports set cells_expired_at = now(), sample = '[]'::jsonb where id = ${importId}::uuid`);
    }
    if (row.file) {
      await tx.execute(sql`update imports set upload_expired_at = now(), updated_at = now() where id = ${importId}::uuid`);
      await deps.storage.delete(row.storage_key);
    }
    return true;
  });
}

/** Deletes a draft never started (and its upload) if it is still one; true when this call deleted it. */
async function deleteIdleDraft(deps: UploadDeps, importId: string, idleBefore: Date): Promise<boolean> {
  return deps.db.transaction(async (tx) => {
    const [row] = await tx.execute<{ storage_key: string }>(sql`
      delete from imports
      where id = ${importId}::uuid and status in (${statusList(IMPORT_NOT_STARTED)}) and updated_at <= ${idleBefore.toISOString()}::timestamptz
      returning storage_key`);
    if (!row) return false;
    await deps.storage.delete(row.storage_key);
    return true;
  });
}

/** Rows examined per round: a backlog after downtime is worked off in bounded steps. */
const SWEEP_BATCH = 200;

/** Expires every upload due at `now` and deletes idle drafts; optionally only one workspace's (an erase). */
export async function sweepUploads(
  deps: UploadDeps,
  settings: RetentionSettings,
  now: Date,
  workspaceId?: string,
): Promise<{ uploadsExpired: number; draftsDeleted: number }> {
  const inWorkspace = workspaceId ? sql`and workspace_id = ${workspaceId}::uuid` : sql``;
  const endedBefore = new Date(now.getTime() - settings.uploadRetentionHours * HOUR_MS).toISOString();
  let uploadsExpired = 0;
  let after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const due = await deps.db.execute<{ id: string; kind: string; due: boolean }>(sql`
      select id, kind, coalesce(finished_at, updated_at) <= ${endedBefore}::timestamptz as due from imports
      where (upload_expired_at is null or cells_expired_at is null) and status in (${statusList(IMPORT_ENDED)}) ${inWorkspace}
        and (kind = 'members' or coalesce(finished_at, updated_at) <= ${endedBefore}::timestamptz) and id > ${after}::uuid
      order by id limit ${SWEEP_BATCH}`);
    for (const r of due) if (await expireImportUpload(deps, r.id, { keepCells: r.kind === "members" && !r.due })) uploadsExpired += 1;
    if (due.length < SWEEP_BATCH) break;
    after = due[due.length - 1]!.id;
  }
  const idleBefore = new Date(now.getTime() - settings.draftRetentionHours * HOUR_MS);
  let draftsDeleted = 0;
  for (;;) {
    const idle = await deps.db.execute<{ id: string }>(sql`
      select id from imports
      where status in (${statusList(IMPORT_NOT_STARTED)}) and updated_at <= ${idleBefore.toISOString()}::timestamptz ${inWorkspace}
      order by id limit ${SWEEP_BATCH}`);
    let deleted = 0;
    for (const r of idle) if (await deleteIdleDraft(deps, r.id, idleBefore)) deleted += 1;
    draftsDeleted += deleted;
    // Rows a concurrent edit saved from deletion stay in the result: stop rather than loop on them.
    if (idle.length < SWEEP_BATCH || deleted === 0) break;
  }
  return { uploadsExpired, draftsDeleted };
}

/**
 * Expires the uploads (file, sample rows, a dry run's failed cells) of a workspace's imports not started yet (drafts
 * and validated imports), as the sweep expires an ended import's: an erase calls it, since the file and the sample may
 * hold the erased people. The imports stay; start and validate then answer 409 upload_expired (upload again). Queued
 * and running imports keep their file: they are writing people. Returns how many were expired.
 */
export async function expireUnstartedUploads(deps: UploadDeps, workspaceId: string): Promise<number> {
  let expired = 0;
  let after = "00000000-0000-0000-0000-000000000000";
  for (;;) {
    const held = await deps.db.execute<{ id: string }>(sql`
      select id from imports
      where workspace_id = ${workspaceId}::uuid and status in (${statusList(IMPORT_NOT_STARTED)})
        and (upload_expired_at is null or cells_expired_at is null) and id > ${after}::uuid
      order by id limit ${SWEEP_BATCH}`);
    for (const r of held) if (await expireImportUpload(deps, r.id, { statuses: IMPORT_NOT_STARTED })) expired += 1;
    if (held.length < SWEEP_BATCH) break;
    after = held[held.length - 1]!.id;
  }
  return expired;
}

/**
 * Called when an import ends: a team-member upload (passwords) is deleted at once, and any upload when
 * UPLOAD_RETENTION_HOURS is 0. Other uploads wait for the sweep. True when the upload was deleted now.
 */
export async function expireUploadAtEnd(deps: UploadDeps & { uploadRetentionHours: number }, importId: string): Promise<boolean> {
  const [row] = await deps.db.execute<{ kind: string }>(sql`select kind from imports where id = ${importId}::uuid`);
  if (!row || (row.kind !== "members" && deps.uploadRetentionHours > 0)) return false;
  // A team-member file goes now; its cells (passwords redacted) stay for the report until the retention ends.
  return expireImportUpload(deps, importId, { keepCells: deps.uploadRetentionHours > 0 });
}
