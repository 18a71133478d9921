import type { Env } from "../../config/env.js";
import { createSql, type Sql } from "../../db/client.js";
import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { queueWebhook, webhookSettings } from "../../domain/webhooks/delivery.js";
import { exportCleanupProcessor } from "./export-cleanup.js";
import { exportRunProcessor } from "./export-run.js";
import type { GaveUpHandlers } from "../worker-pool.js";
import { failImportRun } from "../../domain/imports/recovery.js";
import { importRunProcessor } from "./import-run.js";
import { deletionRunProcessor, retentionSweepProcessor } from "./deletions.js";
import { failDeletion } from "../../domain/deletions/lifecycle.js";
import { sweepSettings } from "../../domain/retention/sweep.js";
import { expireUploadAtEnd } from "../../domain/retention/uploads.js";
import { webhookDeliverProcessor } from "./webhook-deliver.js";
import { refreshAllProcessor, segmentRecomputeProcessor, workspaceRecomputeProcessor } from "./segments.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "metrics" | "producer" | "logger">): Processors {
  const settings = webhookSettings(rt.env);
  const segmentDeps = { db: rt.db, producer: rt.producer };
  const webhookDeps = { db: rt.db, producer: rt.producer, log: rt.logger, settings };
  return {
    "import.run": importRunProcessor({
      db: rt.db,
      storage: rt.storage,
      batchSize: rt.env.IMPORT_BATCH_SIZE,
      maxRecordBytes: rt.env.IMPORT_MAX_RECORD_BYTES,
      batchTimeoutMs: rt.env.IMPORT_BATCH_TIMEOUT_MS,
      metrics: rt.metrics,
      producer: rt.producer,
      uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS,
      onFinished: (ids) => queueWebhook(webhookDeps, { workspaceId: ids.workspaceId, resource: "import", id: ids.importId }),
    }),
    "webhook.deliver": webhookDeliverProcessor({ db: rt.db, settings }),
    "segment.recompute": segmentRecomputeProcessor(segmentDeps),
    "segments.recompute_workspace": workspaceRecomputeProcessor(segmentDeps),
    "segments.refresh_all": refreshAllProcessor(segmentDeps),
    "export.run": exportRunProcessor({
      db: rt.db,
      storage: rt.storage,
      ttlDays: rt.env.EXPORT_TTL_DAYS,
      timeoutMs: rt.env.EXPORT_TIMEOUT_MS,
      connect: exportConnection(rt.env),
      onFinished: (ids) => queueWebhook(webhookDeps, { workspaceId: ids.workspaceId, resource: "export", id: ids.exportId }),
    }),
    "export.cleanup": exportCleanupProcessor({ db: rt.db, storage: rt.storage }),
    "deletion.run": deletionRunProcessor({
      db: rt.db,
      storage: rt.storage,
      batchSize: rt.env.DELETION_BATCH_SIZE,
      draftRetentionHours: rt.env.DRAFT_RETENTION_HOURS,
      metrics: rt.metrics,
    }),
    "retention.sweep": retentionSweepProcessor({ db: rt.db, storage: rt.storage, settings: sweepSettings(rt.env) }),
  };
}

/** One connection per export run, with the export's own statement timeout (a big COPY outlives the default). */
export function exportConnection(env: Pick<Env, "DATABASE_URL" | "EXPORT_TIMEOUT_MS">): () => Sql {
  return () => createSql(env.DATABASE_URL, { max: 1, statementTimeoutMs: env.EXPORT_TIMEOUT_MS, applicationName: "roster-export" });
}

/** What each job kind records when BullMQ gives up on a job (e.g. it stalled more than WORKER_MAX_STALLED_COUNT times). */
export function buildGaveUpHandlers(rt: Pick<Runtime, "db" | "env" | "producer" | "logger" | "storage">): GaveUpHandlers {
  const settings = webhookSettings(rt.env);
  return {
    "import.run": async (ids, reason) => {
      const reasonText = `The import stopped: ${reason}. Committed rows are kept; start it again to resume from the last committed batch.`;
      if (await failImportRun(rt.db, ids, reasonText)) {
        await expireUploadAtEnd({ db: rt.db, storage: rt.storage, uploadRetentionHours: rt.env.UPLOAD_RETENTION_HOURS }, ids.importId).catch(() => {});
        await queueWebhook({ db: rt.db, producer: rt.producer, log: rt.logger, settings }, { workspaceId: ids.workspaceId, resource: "import", id: ids.importId });
      }
    },
    "deletion.run": async (ids, reason) => {
      await failDeletion(rt.db, ids, reason);
    },
  };
}
