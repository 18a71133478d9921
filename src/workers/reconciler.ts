import type { Db } from "../db/client.js";
import { deletionRuns } from "../domain/deletions/lifecycle.js";
import { exportRuns } from "../domain/exports/lifecycle.js";
import { importRuns } from "../domain/imports/lifecycle.js";
import { importUndoRuns } from "../domain/imports/undo.js";
import type { RunKind, StrandedRun } from "../domain/runs.js";
import { segmentRuns } from "../domain/segments/lifecycle.js";
import type { Logger } from "../lib/logger.js";
import type { Producer } from "../queue/producer.js";
import { restoreMissingSchedules, type ScheduleEnv } from "../queue/schedules.js";
import type { Announce } from "./run-processor.js";

/** A run requested this recently may still be between its Postgres update and its enqueue (which times out at 2 s). */
export const ENQUEUE_GRACE_MS = 5_000;
/** Job states in which BullMQ will still run (or is running) the job. */
const LIVE_STATES = new Set(["waiting", "active", "delayed", "prioritized", "waiting-children"]);

/**
 * Every kind of job-backed run whose durable state lives in Postgres. A new kind (deletions) implements RunKind in
 * its domain module and is added here.
 */
export const RUN_KINDS: readonly RunKind[] = [importRuns, exportRuns, segmentRuns, deletionRuns, importUndoRuns];

export interface ReconcileDeps {
  db: Db;
  producer: Producer;
  log: Logger;
  /** Overrides ENQUEUE_GRACE_MS (tests). */
  graceMs?: number;
  /** Announces a run the reconciler failed (webhooks); without it nothing is announced. */
  announce?: Announce;
  /** The recurring jobs' settings: each pass re-registers the ones Redis lost. Without it schedules are not checked. */
  schedules?: ScheduleEnv;
  /** Runs after a run the reconciler failed for good, as the worker runs its kind's `ended` (a team-member upload goes). */
  ended?: ReconcileEnded;
}

/** What must not outlive a run once it ended for good (see RunSpec.ended); errors are logged, never thrown. */
export type ReconcileEnded = (kind: RunKind, run: StrandedRun, log: Logger) => Promise<void>;

export interface ReconcileResult {
  requeued: number;
  failed: number;
}

/** A job looked up by id in each of its kind's queues (ids are unique across them): where it is, or `missing`. */
async function jobState(queues: ReturnType<Producer["queue"]>[], id: string) {
  for (const queue of queues) {
    const job = await queue.getJob(id);
    if (job) return { job, state: await job.getState() };
  }
  return { job: undefined, state: "missing" };
}

/**
 * One kind: find runs Postgres shows queued/running, look their jobs up by the ids the kind derives from the row, and
 * for those with no live job, fail the run (its job failed and the kind has a fail-for-good) or queue it again.
 */
async function reconcileKind(kind: RunKind, { db, producer, log, graceMs = ENQUEUE_GRACE_MS, announce, ended }: ReconcileDeps): Promise<ReconcileResult> {
  const result: ReconcileResult = { requeued: 0, failed: 0 };
  const queues = kind.queues.map((q) => producer.queue(q));
  for (const run of await kind.stranded(db, graceMs)) {
    const states = await Promise.all(run.jobIds.map((id) => jobState(queues, id)));
    if (states.some((s) => LIVE_STATES.has(s.state))) continue;
    const own = states[0];
    // Its own job, or another that runs it (a split import's part), failed for good: the run fails as the worker would have.
    const failed = states.find((s) => s.state === "failed");
    if (failed && kind.fail) {
      // BullMQ gave up (and the worker could not say so): show the reason; for an import a start resumes from the checkpoint.
      if (await kind.fail(db, run, { cause: "job_failed", message: failed.job?.failedReason })) {
        result.failed += 1;
        await ended?.(kind, run, log).catch((e: unknown) => log.warn({ [`${kind.noun}Id`]: run.id, err: (e as Error).message }, "could not clean up after the failed run"));
        await announceFailed(kind, run, announce, log);
      }
      continue;
    }
    // A finished job under the id the requeue reuses would swallow the new one.
    if (kind.reusesJobId) await own?.job?.remove();
    if (!(await kind.requeue(db, producer, run))) continue;
    log.warn({ [`${kind.noun}Id`]: run.id, workspaceId: run.workspaceId, status: run.status, jobState: own?.state }, `${kind.noun} had no live job; re-enqueued`);
    result.requeued += 1;
  }
  return result;
}

async function announceFailed(kind: RunKind, run: StrandedRun, announce: Announce | undefined, log: Logger): Promise<void> {
  if (!kind.webhook || !announce) return;
  await announce({ workspaceId: run.workspaceId, resource: kind.webhook, id: run.id }).catch((e: unknown) =>
    log.warn({ err: (e as Error).message }, "could not queue the webhook"),
  );
}

/**
 * Re-enqueues work Postgres shows as queued or running but Redis has no live job for (lost on a Redis restart, a crash
 * between update and enqueue), and re-registers the recurring jobs an emptied Redis lost.
 */
export async function reconcileAll(deps: ReconcileDeps): Promise<{ ok: boolean; results: Record<string, ReconcileResult>; schedulesRestored: string[] }> {
  const results: Record<string, ReconcileResult> = {};
  let ok = true;
  let schedulesRestored: string[] = [];
  if (deps.schedules) {
    try {
      schedulesRestored = await restoreMissingSchedules(deps.producer, deps.schedules, deps.log);
    } catch (err) {
      ok = false;
      deps.log.warn({ reconciler: "schedules", err: (err as Error).message }, "reconcile pass failed; will retry");
    }
  }
  for (const kind of RUN_KINDS) {
    try {
      results[kind.name] = await reconcileKind(kind, deps);
    } catch (err) {
      ok = false;
      deps.log.warn({ reconciler: kind.name, err: (err as Error).message }, "reconcile pass failed; will retry");
    }
  }
  return { ok, results, schedulesRestored };
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
