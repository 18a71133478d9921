import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { exports, segments } from "../db/schema.js";
import { failExport } from "../domain/exports/run.js";
import { exportJobId } from "../domain/exports/service.js";
import { requestSegmentRecompute, segmentJobId, workspaceJobId } from "../domain/segments/triggers.js";
import { failImportRun, findRunningImports, importJobId, rearmImport } from "../domain/imports/recovery.js";
import type { Logger } from "../lib/logger.js";
import { deletionJobId, enqueueDeletionRun, failDeletion, strandedDeletions } from "../domain/deletions/lifecycle.js";
import type { Producer } from "../queue/producer.js";

/** A run requested this recently may still be between its Postgres update and its enqueue (which times out at 2 s). */
export const ENQUEUE_GRACE_MS = 5_000;
/** Job states in which BullMQ will still run (or is running) the job. */
const LIVE_STATES = new Set(["waiting", "active", "delayed", "prioritized", "waiting-children"]);

export interface ReconcileDeps {
  db: Db;
  producer: Producer;
  log: Logger;
  /** Overrides ENQUEUE_GRACE_MS (tests). */
  graceMs?: number;
}

export interface ReconcileResult {
  requeued: number;
  failed: number;
}

/**
 * One reconciler per kind of background work whose durable state lives in Postgres: find rows that say
 * queued/running, look their job up by the id the producer derived from the row, and re-enqueue (or fail) those with
 * no live job.
 */
const RECONCILERS: Record<string, (deps: ReconcileDeps) => Promise<ReconcileResult>> = {
  imports: reconcileImports,
  exports: reconcileExports,
  segments: reconcileSegments,
  deletions: reconcileDeletions,
};

async function reconcileDeletions({ db, producer, log, graceMs = ENQUEUE_GRACE_MS }: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { requeued: 0, failed: 0 };
  const queue = producer.queue("deletions");
  for (const del of await strandedDeletions(db, graceMs)) {
    const { job, state } = await jobState(queue, deletionJobId(del.id));
    if (LIVE_STATES.has(state)) continue;
    const ids = { workspaceId: del.workspaceId, deletionId: del.id };
    if (state === "failed") {
      if (await failDeletion(db, ids, job?.failedReason ?? "its job failed")) result.failed += 1;
      continue;
    }
    // The run is fenced and resumes from what is left of its snapshot, so a rerun is safe.
    await job?.remove();
    await enqueueDeletionRun(producer, del);
    log.warn({ deletionId: del.id, workspaceId: del.workspaceId, jobState: state }, "deletion had no live job; re-enqueued");
    result.requeued += 1;
  }
  return result;
}

const olderThan = (ms: number) => sql`now() - make_interval(secs => ${ms / 1000})`;

async function jobState(queue: ReturnType<Producer["queue"]>, id: string) {
  const job = await queue.getJob(id);
  return { job, state: job ? await job.getState() : "missing" };
}

async function reconcileExports({ db, producer, log, graceMs = ENQUEUE_GRACE_MS }: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { requeued: 0, failed: 0 };
  const queue = producer.queue("exports");
  const running = await db
    .select({ id: exports.id, workspaceId: exports.workspaceId })
    .from(exports)
    .where(and(inArray(exports.status, ["queued", "processing"]), lt(exports.createdAt, olderThan(graceMs))));
  for (const exp of running) {
    const { job, state } = await jobState(queue, exportJobId(exp.id));
    if (LIVE_STATES.has(state)) continue;
    if (state === "failed") {
      if (await failExport(db, exp.id, `The export stopped: ${job?.failedReason ?? "its job failed"}.`)) result.failed += 1;
      continue;
    }
    // A finished job under this id would swallow the new one (same job id): the run is fenced, so a rerun is safe.
    await job?.remove();
    await producer.enqueue("export.run", { workspaceId: exp.workspaceId, exportId: exp.id }, { jobId: exportJobId(exp.id) });
    log.warn({ exportId: exp.id, workspaceId: exp.workspaceId, jobState: state }, "export had no live job; re-enqueued");
    result.requeued += 1;
  }
  return result;
}

async function reconcileSegments({ db, producer, log, graceMs = ENQUEUE_GRACE_MS }: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { requeued: 0, failed: 0 };
  const queue = producer.queue("segments");
  const computing = await db
    .select({ id: segments.id, workspaceId: segments.workspaceId })
    .from(segments)
    .where(
      and(
        eq(segments.status, "computing"),
        eq(segments.type, "dynamic"),
        or(isNull(segments.recomputeRequestedAt), lt(segments.recomputeRequestedAt, olderThan(graceMs))),
        lt(segments.updatedAt, olderThan(graceMs)),
      ),
    );
  for (const seg of computing) {
    const [own, workspace] = await Promise.all([jobState(queue, segmentJobId(seg.id)), jobState(queue, workspaceJobId(seg.workspaceId))]);
    if (LIVE_STATES.has(own.state) || LIVE_STATES.has(workspace.state)) continue;
    await requestSegmentRecompute(db, producer, seg.workspaceId, seg.id);
    log.warn({ segmentId: seg.id, workspaceId: seg.workspaceId }, "segment was computing with no live job; recompute re-enqueued");
    result.requeued += 1;
  }
  return result;
}

/** Re-enqueues work Postgres shows as queued or running but Redis has no live job for (lost on a Redis restart, a crash between update and enqueue). */
export async function reconcileAll(deps: ReconcileDeps): Promise<{ ok: boolean; results: Record<string, ReconcileResult> }> {
  const results: Record<string, ReconcileResult> = {};
  let ok = true;
  for (const [name, reconcile] of Object.entries(RECONCILERS)) {
    try {
      results[name] = await reconcile(deps);
    } catch (err) {
      ok = false;
      deps.log.warn({ reconciler: name, err: (err as Error).message }, "reconcile pass failed; will retry");
    }
  }
  return { ok, results };
}

async function reconcileImports({ db, producer, log, graceMs = ENQUEUE_GRACE_MS }: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { requeued: 0, failed: 0 };
  const queue = producer.queue("imports");
  for (const imp of await findRunningImports(db, graceMs)) {
    const job = await queue.getJob(importJobId(imp.id, imp.queuedAt));
    const state = job ? await job.getState() : "missing";
    if (LIVE_STATES.has(state)) continue;
    const ids = { workspaceId: imp.workspaceId, importId: imp.id };
    if (state === "failed") {
      // BullMQ gave up (and the worker could not say so): show the reason; a start resumes from the checkpoint.
      if (await failImportRun(db, ids, `The import stopped: ${job?.failedReason ?? "its job failed"}. Start it again to resume.`)) result.failed += 1;
      continue;
    }
    const queuedAt = await rearmImport(db, imp);
    if (!queuedAt) continue;
    await producer.enqueue("import.run", ids, { jobId: importJobId(imp.id, queuedAt) });
    log.warn({ importId: imp.id, workspaceId: imp.workspaceId, status: imp.status, jobState: state }, "import had no live job; re-enqueued");
    result.requeued += 1;
  }
  return result;
}

/** The start pass is retried this often until it succeeds once (Redis or Postgres may still be coming up). */
const START_RETRY_MS = 1_000;
const START_ATTEMPTS = 30;

/** Runs a pass now and then every `intervalMs` (0: only at start); stop() waits for a pass in flight. */
export function startReconciler(deps: ReconcileDeps, intervalMs: number): { stop(): Promise<void> } {
  let stopped = false;
  const startPass = async () => {
    for (let i = 0; i < START_ATTEMPTS && !stopped; i++) {
      if ((await reconcileAll(deps)).ok) return;
      await new Promise((r) => setTimeout(r, START_RETRY_MS).unref());
    }
  };
  let running: Promise<unknown> = startPass();
  let timer: NodeJS.Timeout | undefined;
  if (intervalMs > 0) {
    timer = setInterval(() => {
      running = running.then(() => reconcileAll(deps));
    }, intervalMs);
    timer.unref();
  }
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => {});
    },
  };
}
