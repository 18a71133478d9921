import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports, type ImportStatus } from "../../db/schema.js";

/** Statuses in which Postgres expects a job to exist for the import. */
export const RUNNING_STATUSES: ImportStatus[] = ["queued", "processing", "validating"];

/**
 * The BullMQ job id of one run request: derived from what Postgres stores (import id and queued_at), so the job
 * can be looked up again after a Redis restart (BullMQ's own ids restart at 1 and must not be trusted).
 */
export function importJobId(importId: string, queuedAt: Date): string {
  return `import-${importId}-${queuedAt.getTime()}`;
}

/** Says on the import why its job will not run again (e.g. it stalled too often); a start resumes it from its checkpoint. */
export async function failImportRun(db: Db, ids: { workspaceId: string; importId: string }, reason: string): Promise<boolean> {
  const rows = await db
    .update(imports)
    .set({ status: "failed", failureReason: reason, finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId), inArray(imports.status, RUNNING_STATUSES)))
    .returning({ id: imports.id });
  return rows.length > 0;
}

export interface StrandedImport {
  id: string;
  workspaceId: string;
  status: ImportStatus;
  queuedAt: Date;
}

/** Imports Postgres shows as running whose run was requested more than `graceMs` ago (younger ones may be mid-enqueue). */
export async function findRunningImports(db: Db, graceMs: number): Promise<StrandedImport[]> {
  const rows = await db
    .select({ id: imports.id, workspaceId: imports.workspaceId, status: imports.status, queuedAt: imports.queuedAt })
    .from(imports)
    .where(and(inArray(imports.status, RUNNING_STATUSES), lt(imports.queuedAt, sql`now() - make_interval(secs => ${graceMs / 1000})`)));
  return rows.filter((r): r is StrandedImport => r.queuedAt !== null);
}

/** A new run request for an import whose job is gone: a fresh queued_at (and so job id), only if nothing changed meanwhile. */
export async function rearmImport(db: Db, imp: StrandedImport): Promise<Date | null> {
  const queuedAt = new Date();
  const rows = await db
    .update(imports)
    .set({ queuedAt })
    .where(and(eq(imports.id, imp.id), eq(imports.status, imp.status), sql`date_trunc('milliseconds', ${imports.queuedAt}) = ${imp.queuedAt.toISOString()}::timestamptz`))
    .returning({ id: imports.id });
  return rows.length ? queuedAt : null;
}
