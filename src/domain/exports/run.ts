/**
 * Runs one export job. Fenced like imports: taking the export bumps `fence`, and the result is committed only
 * while the run still holds the newest fence, so a retried or duplicated job never publishes twice. Each run writes
 * its own storage key (fence in the name), so two runs racing cannot overwrite each other's file either.
 */
import { and, eq } from "drizzle-orm";
import type { Db, Sql } from "../../db/client.js";
import { segments } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { recordExportBytes, type Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import { DomainError } from "../errors.js";
import { conditionsPredicate } from "./conditions-filter.js";
import type { ExportParams } from "./request.js";
import { eventsStatements, usersStatements, type ExportStatements } from "./sql.js";
import { writeExport } from "./write.js";
import { completeExport, failHeldExport, takeExport } from "./lifecycle.js";

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
  /** Where written bytes are counted (the worker process's registry); optional for callers that serve no metrics. */
  metrics?: Metrics;
}

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
  const taken = await takeExport(db, payload);
  if (!taken) return "not_runnable";
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
    await failHeldExport(db, taken, err.message);
    return "failed";
  }

  if (!(await completeExport(db, taken, { storageKey: key, rowCount: result.rowCount, sizeBytes: result.sizeBytes }, deps.ttlDays))) {
    // A newer run took the export meanwhile: its file is the one that counts.
    await storage.delete(key);
    log.warn({ exportId: taken.id, fence: taken.fence }, "export fence lost; discarded this run's file");
    return "fence_lost";
  }
  if (deps.metrics) recordExportBytes(deps.metrics, taken.kind, result.sizeBytes);
  log.info({ exportId: taken.id, rowCount: result.rowCount, sizeBytes: result.sizeBytes }, "export written");
  return "done";
}
