/**
 * Copies of people data Roster cannot edit row by row: import uploads (with their sample rows and failed rows'
 * cells) and export files. After an erase they would still hold the erased people, so an erase ends by expiring the
 * workspace's uploads and finished exports' files at once, instead of at their usual retention: ended imports' uploads,
 * and those of drafts and validated imports (never started: their file and sample rows go, the import stays, and a
 * start or validate answers 409 upload_expired, so the client uploads again). Queued and running imports keep their
 * file: they are writing people, and a person they write after the erase is a new instruction from the client.
 */
import { and, eq, lte } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { exports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import type { Storage } from "../../storage/storage.js";
import { cleanupExpiredExports } from "../exports/cleanup.js";
import { expireUnstartedUploads, sweepUploads } from "../retention/uploads.js";
import { NotFoundError } from "../errors.js";
import { erasePeople } from "../people/erase.js";
import { parsePersonId } from "../people/view.js";

/** Deletes the workspace's uploads of imports not queued or running and its export files; counts of what went. */
export async function purgeCopies(deps: { db: Db; storage: Storage; log: Logger; draftRetentionHours: number }, workspaceId: string, now = new Date()) {
  const { uploadsExpired: ended } = await sweepUploads(deps, { uploadRetentionHours: 0, draftRetentionHours: deps.draftRetentionHours }, now, workspaceId);
  const uploadsExpired = ended + (await expireUnstartedUploads(deps, workspaceId));
  await deps.db
    .update(exports)
    .set({ expiresAt: now })
    .where(and(eq(exports.workspaceId, workspaceId), eq(exports.status, "done"), lte(exports.createdAt, now)));
  const { deleted: exportFilesDeleted } = await cleanupExpiredExports(deps, now);
  return { uploadsExpired, exportFilesDeleted };
}

/**
 * Erases one person (DELETE /v1/users/:id) and then the copies that may still hold them. NotFound for an id of
 * another workspace or of no one.
 */
export async function eraseUser(deps: { db: Db; storage: Storage; log: Logger; draftRetentionHours: number }, workspaceId: string, id: string): Promise<void> {
  const personId = parsePersonId(id);
  const erased = personId === null ? [] : await erasePeople(deps.db, workspaceId, [personId]);
  if (!erased.length) throw new NotFoundError("User");
  const purged = await purgeCopies(deps, workspaceId);
  deps.log.info({ workspaceId, personId, ...purged }, "person erased; uploads and export files of the workspace expired");
}
