import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import { queueImportWebhook, webhookSettings } from "../../domain/webhooks/imports.js";
import { importRunProcessor } from "./import-run.js";
import { webhookDeliverProcessor } from "./webhook-deliver.js";
import { refreshAllProcessor, segmentRecomputeProcessor, workspaceRecomputeProcessor } from "./segments.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "metrics" | "producer" | "logger">): Processors {
  const settings = webhookSettings(rt.env);
  const segmentDeps = { db: rt.db, producer: rt.producer };
  return {
    "import.run": importRunProcessor({
      db: rt.db,
      storage: rt.storage,
      batchSize: rt.env.IMPORT_BATCH_SIZE,
      metrics: rt.metrics,
      producer: rt.producer,
      onFinished: (ids) => queueImportWebhook({ db: rt.db, producer: rt.producer, log: rt.logger, settings }, ids.workspaceId, ids.importId),
    }),
    "webhook.deliver": webhookDeliverProcessor({ db: rt.db, settings }),
    "segment.recompute": segmentRecomputeProcessor(segmentDeps),
    "segments.recompute_workspace": workspaceRecomputeProcessor(segmentDeps),
    "segments.refresh_all": refreshAllProcessor(segmentDeps),
  };
}
