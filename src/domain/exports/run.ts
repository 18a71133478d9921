/**
 * Runs one export job. Fenced like imports: taking the export bumps `fence`, and the result is committed only
 * while the run still holds the newest fence, so a retried or duplicated job never publishes twice. Each run writes
 * its own storage key (fence in the name), so two runs racing cannot overwrite each other's file either.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db, Sql } from "../../db/client.js";
import { exports, segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import type { Storage } from "../../storage/storage.js";
import { DomainError } from "../errors.js";
import { conditionsPredicate } from "./conditions-filter.js";
import type { ExportParams } from "./request.js";
import { eventsStatements, usersStatements, type ExportStatements } from "./sql.js";
import { writeExport } from "./write.js";

/** `interrupted`: the worker is shutting down; the export stays processing and the next run starts it over. */
export type ExportOutcome = "done" | "failed" | "not_runnable" | "fence_lost" | "interrupted";

export interface ExportRunDeps {
  db: Db;
  storage: Storage;
  log: Logger;
  ttlDays: number;
  /** Longest a run may take before it is abandoned (and retried by the queue). */
  timeoutMs: number;
  /** Opens a connection for one run (closed by the run): see createSql for why exports do not use the pool. */
  connect: () => Sql;
}

const DAY_MS = 24 * 3600 * 1000;

export function exportStorageKey(workspaceId: string, exportId: string, fence: number, gzip: boolean): string {
  return `exports/${workspaceId}/${exportId}/${fence}.csv${gzip ? ".gz" : ""}`;
}

/** Problems no retry can fix: the export fails with the reason, and the job ends. */
class ExportInputError extends Error {}

async function statementsFor(db: Db, workspaceId: string, kind: "users" | "events", p: ExportParams): Promise<ExportStatements> {
  if (kind === "events") return eventsStatements(workspaceId, p);
  if (p.segmentId) {
    const [seg] = await db.select({ id: segments.id }).from(segments).where(and(eq(segments.id, p.segmentId), eq(segments.workspaceId, workspaceId)));
    if (!seg) throw new ExportInputError("The segment it was limited to was deleted.");
  }
  let predicate = null;
  if (p.conditions !== null && p.conditions !== undefined) {
    try {
      predicate = conditionsPredicate(p.conditions, { workspaceId, now: new Date() });
    } catch (err) {
      if (err instanceof DomainError) throw new ExportInputError(err.message);
      throw err;
    }
  }
  return usersStatements(workspaceId, p, predicate);
}

export async function runExport(deps: ExportRunDeps, payload: { workspaceId: string; exportId: string }, signal?: AbortSignal): Promise<ExportOutcome> {
  const { db, storage, log } = deps;
  const [taken] = await db
    .update(exports)
    .set({ status: "processing", fence: sql`${exports.fence} + 1`, startedAt: new Date(), failureReason: null })
    .where(and(eq(exports.id, payload.exportId), eq(exports.workspaceId, payload.workspaceId), inArray(exports.status, ["queued", "processing"])))
    .returning();
  if (!taken) return "not_runnable";
  const fenced = and(eq(exports.id, taken.id), eq(exports.fence, taken.fence), eq(exports.status, "processing"));
  const params = taken.params as unknown as ExportParams;
  const key = exportStorageKey(taken.workspaceId, taken.id, taken.fence, params.gzip);

  let result: { rowCount: number; sizeBytes: number };
  try {
    const stmts = await statementsFor(db, taken.workspaceId, taken.kind, params);
    result = await writeExport(deps.connect(), storage, key, stmts, {
      gzip: params.gzip,
      bom: params.bom,
      signal,
      timeoutMs: deps.timeoutMs,
      terminateBackend: (pid) => db.$client`select pg_terminate_backend(${pid})`,
    });
  } catch (err) {
    await storage.delete(key).catch(() => {});
    if (signal?.aborted) return "interrupted";
    if (!(err instanceof ExportInputError)) throw err;
    await db.update(exports).set({ status: "failed", failureReason: err.message, finishedAt: new Date() }).where(fenced);
    return "failed";
  }

  const finishedAt = new Date();
  const [done] = await db
    .update(exports)
    .set({
      status: "done",
      storageKey: key,
      rowCount: result.rowCount,
      sizeBytes: result.sizeBytes,
      finishedAt,
      expiresAt: new Date(finishedAt.getTime() + deps.ttlDays * DAY_MS),
    })
    .where(fenced)
    .returning({ id: exports.id });
  if (!done) {
    // A newer run took the export meanwhile: its file is the one that counts.
    await storage.delete(key);
    log.warn({ exportId: taken.id, fence: taken.fence }, "export fence lost; discarded this run's file");
    return "fence_lost";
  }
  log.info({ exportId: taken.id, rowCount: result.rowCount, sizeBytes: result.sizeBytes }, "export written");
  return "done";
}

/**
 * Marks an export failed once its job is out of retries, so it does not stay "processing" forever. False when the
 * export had already ended (it is left as it was).
 */
export async function failExport(db: Db, exportId: string, reason: string): Promise<boolean> {
  const rows = await db
    .update(exports)
    .set({ status: "failed", failureReason: reason, finishedAt: new Date() })
    .where(and(eq(exports.id, exportId), inArray(exports.status, ["queued", "processing"])))
    .returning({ id: exports.id });
  return rows.length > 0;
}
