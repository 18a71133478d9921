import type { Runtime } from "../../runtime.js";
import type { Processors } from "../types.js";
import type { GaveUpHandlers } from "../worker-pool.js";
import { failImportRun } from "../../domain/imports/recovery.js";
import { queueImportWebhook, webhookSettings } from "../../domain/webhooks/imports.js";
import { importRunProcessor } from "./import-run.js";
import { webhookDeliverProcessor } from "./webhook-deliver.js";

/** One processor per job kind of the contract (startup fails if one is missing). */
export function buildProcessors(rt: Pick<Runtime, "db" | "storage" | "env" | "metrics" | "producer" | "logger">): Processors {
  const settings = webhookSettings(rt.env);
  return {
    "import.run": importRunProcessor({
      db: rt.db,
      storage: rt.storage,
      batchSize: rt.env.IMPORT_BATCH_SIZE,
      batchTimeoutMs: rt.env.IMPORT_BATCH_TIMEOUT_MS,
      metrics: rt.metrics,
      onFinished: (ids) => queueImportWebhook({ db: rt.db, producer: rt.producer, log: rt.logger, settings }, ids.workspaceId, ids.importId),
    }),
    "webhook.deliver": webhookDeliverProcessor({ db: rt.db, settings }),
  };
}

/** What each job kind records when BullMQ gives up on a job (e.g. it stalled more than WORKER_MAX_STALLED_COUNT times). */
export function buildGaveUpHandlers(rt: Pick<Runtime, "db" | "env" | "producer" | "logger">): GaveUpHandlers {
  const settings = webhookSettings(rt.env);
  return {
    "import.run": async (ids, reason) => {
      const reasonText = `The import stopped: ${reason}. Committed rows are kept; start it again to resume from the last committed batch.`;
      if (await failImportRun(rt.db, ids, reasonText)) {
        await queueImportWebhook({ db: rt.db, producer: rt.producer, log: rt.logger, settings }, ids.workspaceId, ids.importId);
      }
    },
  };
}
