/**
 * Deletes the files of expired exports. An expired export keeps its row (status `expired`, no file) as history:
 * GET shows it, a download answers 409 export_expired. Safe to run any number of times, concurrently too: the row
 * is marked expired before its file goes (so no download starts on a file about to vanish), and the key is cleared
 * only after the delete succeeded (so a crash in between is finished by the next run).
 */
import { and, eq, inArray, isNotNull, lte } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { exports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import type { Storage } from "../../storage/storage.js";
import { EXPORT_WITH_FILE } from "./lifecycle.js";

/** Rows per round: bounded so a backlog after downtime is worked off in steps, not one huge statement. */
const CLEANUP_BATCH = 500;

export async function cleanupExpiredExports(deps: { db: Db; storage: Storage; log: Logger }, now = new Date()): Promise<{ deleted: number }> {
  const { db, storage, log } = deps;
  let deleted = 0;
  for (;;) {
    const due = await db
      .update(exports)
      .set({ status: "expired" })
      .where(
        inArray(
          exports.id,
          db
            .select({ id: exports.id })
            .from(exports)
            .where(and(inArray(exports.status, EXPORT_WITH_FILE), lte(exports.expiresAt, now), isNotNull(exports.storageKey)))
            .limit(CLEANUP_BATCH),
        ),
      )
      .returning({ id: exports.id, storageKey: exports.storageKey });
    for (const row of due) {
      if (!row.storageKey) continue;
      await storage.delete(row.storageKey);
      await db.update(exports).set({ storageKey: null }).where(and(eq(exports.id, row.id), eq(exports.storageKey, row.storageKey)));
      deleted += 1;
    }
    if (due.length < CLEANUP_BATCH) break;
  }
  if (deleted > 0) log.info({ deleted }, "expired export files deleted");
  return { deleted };
}
