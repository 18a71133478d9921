/**
 * The retention sweep: everything Roster keeps only for a while, deleted in one recurring job (`retention.sweep`).
 * Each part is idempotent and safe to run concurrently with itself, so N workers and a missed run change nothing but
 * timing. `now` is a parameter so tests can move the clock forward.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import type { Logger } from "../../lib/logger.js";
import type { Storage } from "../../storage/storage.js";
import { cleanupExpiredExports } from "../exports/cleanup.js";
import { sweepUploads, type RetentionSettings } from "./uploads.js";

const HOUR_MS = 3600 * 1000;

export interface SweepSettings extends RetentionSettings {
  idempotencyKeyTtlHours: number;
}

export interface SweepResult {
  uploadsExpired: number;
  draftsDeleted: number;
  exportFilesDeleted: number;
  idempotencyKeysDeleted: number;
}

export async function runRetentionSweep(deps: { db: Db; storage: Storage; log: Pick<Logger, "info"> }, settings: SweepSettings, now = new Date()): Promise<SweepResult> {
  const { uploadsExpired, draftsDeleted } = await sweepUploads(deps, settings, now);
  const { deleted: exportFilesDeleted } = await cleanupExpiredExports({ ...deps, log: deps.log as Logger }, now);
  const keys = await deps.db.execute(sql`
    delete from idempotency_keys where created_at <= ${new Date(now.getTime() - settings.idempotencyKeyTtlHours * HOUR_MS).toISOString()}::timestamptz`);
  const result = { uploadsExpired, draftsDeleted, exportFilesDeleted, idempotencyKeysDeleted: keys.count };
  if (uploadsExpired + draftsDeleted + exportFilesDeleted + keys.count > 0) deps.log.info(result, "retention sweep deleted expired data");
  return result;
}

/** The sweep's settings from the environment. */
export function sweepSettings(env: { UPLOAD_RETENTION_HOURS: number; DRAFT_RETENTION_HOURS: number; IDEMPOTENCY_KEY_TTL_HOURS: number }): SweepSettings {
  return { uploadRetentionHours: env.UPLOAD_RETENTION_HOURS, draftRetentionHours: env.DRAFT_RETENTION_HOURS, idempotencyKeyTtlHours: env.IDEMPOTENCY_KEY_TTL_HOURS };
}
