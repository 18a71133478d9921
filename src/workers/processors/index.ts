import type { Env } from "../../config/env.js";
import { createSql, type Sql } from "../../db/client.js";
import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { queueWebhook, webhookSettings } from "../../domain/webhooks/delivery.js";
import { gaveUpHandler, runProcessor, type RunProcessorDeps } from "../run-processor.js";
import type { GaveUpHandlers } from "../worker-pool.js";
import type { ReconcileEnded } from "../reconciler.js";
import { importRuns } from "../../domain/imports/lifecycle.js";
import { attributeCheckProcessor } from "./attribute-check.js";
import { exportCleanupProcessor } from "./export-cleanup.js";
import { exportRun, exportRunJob } from "./export-run.js";
import { importPart, importRun, importRunJob } from "./import-run.js";
import { deletionRun, deletionRunJob, importUndo, importUndoJob, retentionSweepProcessor } from "./deletions.js";
import { sweepSettings } from "../../domain/retention/sweep.js";
import { webhookDeliver, webhookDeliverJob } from "./webhook-deliver.js";
import { subscriptionDeliverProcessor, sweepSubscriptionsProcessor } from "./webhook-subscriptions.js";
import { refreshAllProcessor, segmentRecomputeProcessor, workspaceRecomputeProcessor } from "./segments.js";

/** What the run wrapper needs: the database and a way to announce a finished resource to its callbackUrl. */
export function buildRunDeps(rt: Pick<Runtime, "db" | "env" | "producer" | "logger">): RunProcessorDeps {
  const webhookDeps = { db: rt.db, producer: rt.producer, log: rt.logger, settings: webhookSettings(rt.env) };
  return { db: rt.db, announce: (target) => queueWebhook(webhookDeps, target) };
}

/**
 * One processor per job kind of the contract (startup fails if one is missing). Job-backed runs go through the one
 * wrapper (src/workers/run-processor.ts); segment jobs record their own outcome on the segment and start over when retried.
 */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "metrics" | "producer" | "logger">): Processors {
  const deps = buildRunDeps(rt);
  const importDeps = {
    db: rt.db,
    storage: rt.storage,
    batchSize: rt.env.IMPORT_BATCH_SIZE,
    maxRecordBytes: rt.env.IMPORT_MAX_RECORD_BYTES,
    batchTimeoutMs: rt.env.IMPORT_BATCH_TIMEOUT_MS,
    timeSliceMs: rt.env.IMPORT_TIME_SLICE_MS,
    parseThreadMinBytes: rt.env.IMPORT_PARSE_THREAD_MIN_BYTES,
    parseThreadHeapMb: rt.env.IMPORT_PARSE_THREAD_HEAP_MB,
    parts: rt.env.IMPORT_PARTS,
    partMinBytes: rt.env.IMPORT_PART_MIN_BYTES,
    analyzeAfterRows: rt.env.ANALYZE_AFTER_ROWS,
    metrics: rt.metrics,
    producer: rt.producer,
    uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS,
  };
  const segmentDeps = { db: rt.db, producer: rt.producer, analyzeAfterRows: rt.env.ANALYZE_AFTER_ROWS };
  // Subscription deliveries record their outcome on the subscription (like segment jobs), outside the run wrapper.
  const webhookDeps = { db: rt.db, producer: rt.producer, log: rt.logger, settings: webhookSettings(rt.env) };
  return {
    "import.run": runProcessor(deps, importRun(importDeps)),
    "import.small": runProcessor(deps, importRun(importDeps)),
    "import.part": runProcessor(deps, importPart(importDeps)),
    "webhook.deliver": runProcessor(deps, webhookDeliver({ db: rt.db, settings: webhookSettings(rt.env) })),
    "webhook.subscription_deliver": subscriptionDeliverProcessor(webhookDeps),
    "webhooks.sweep_subscriptions": sweepSubscriptionsProcessor(webhookDeps),
    "segment.recompute": segmentRecomputeProcessor(segmentDeps),
    "segments.recompute_workspace": workspaceRecomputeProcessor(segmentDeps),
    "segments.refresh_all": refreshAllProcessor(segmentDeps),
    "attribute.check": attributeCheckProcessor({ db: rt.db }),
    "export.run": runProcessor(
      deps,
      exportRun({
        db: rt.db,
        storage: rt.storage,
        ttlDays: rt.env.EXPORT_TTL_DAYS,
        timeoutMs: rt.env.EXPORT_TIMEOUT_MS,
        connect: exportConnection(rt.env),
        metrics: rt.metrics,
      }),
    ),
    "export.cleanup": exportCleanupProcessor({ db: rt.db, storage: rt.storage }),
    "deletion.run": runProcessor(
      deps,
      deletionRun({ db: rt.db, storage: rt.storage, batchSize: rt.env.DELETION_BATCH_SIZE, draftRetentionHours: rt.env.DRAFT_RETENTION_HOURS, metrics: rt.metrics }),
    ),
    "import.undo": runProcessor(deps, importUndo({ db: rt.db, producer: rt.producer, batchSize: rt.env.DELETION_BATCH_SIZE })),
    "retention.sweep": retentionSweepProcessor({ db: rt.db, storage: rt.storage, settings: sweepSettings(rt.env) }),
  };
}

/** One connection per export run, with the export's own statement timeout (a big COPY outlives the default). */
export function exportConnection(env: Pick<Env, "DATABASE_URL" | "EXPORT_TIMEOUT_MS">): () => Sql {
  return () => createSql(env.DATABASE_URL, { max: 1, statementTimeoutMs: env.EXPORT_TIMEOUT_MS, applicationName: "roster-export" });
}

/** Job-backed runs BullMQ gives up on without calling the processor (it stalled more than WORKER_MAX_STALLED_COUNT times). */
export function buildGaveUpHandlers(rt: Pick<Runtime, "db" | "env" | "producer" | "logger" | "storage">): GaveUpHandlers {
  const deps = buildRunDeps(rt);
  return {
    "import.run": gaveUpHandler(deps, importRunJob({ db: rt.db, storage: rt.storage, uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS }), rt.logger),
    "import.small": gaveUpHandler(deps, importRunJob({ db: rt.db, storage: rt.storage, uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS }), rt.logger),
    "import.part": gaveUpHandler(deps, importRunJob({ db: rt.db, storage: rt.storage, uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS }), rt.logger),
    "deletion.run": gaveUpHandler(deps, deletionRunJob, rt.logger),
    "import.undo": gaveUpHandler(deps, importUndoJob, rt.logger),
    "export.run": gaveUpHandler(deps, exportRunJob, rt.logger),
    "webhook.deliver": gaveUpHandler(deps, webhookDeliverJob, rt.logger),
  };
}

/**
 * What must not outlive a run the reconciler failed for good (its job failed without the worker saying so): the same
 * `ended` the worker runs, so a team-member import failed that way loses its upload at once too.
 */
export function buildReconcileEnded(rt: Pick<Runtime, "db" | "env" | "storage">): ReconcileEnded {
  const imports = importRunJob({ db: rt.db, storage: rt.storage, uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS });
  return async (kind, run, log) => {
    if (kind === importRuns) await imports.ended?.({ workspaceId: run.workspaceId, importId: run.id }, log);
  };
}
