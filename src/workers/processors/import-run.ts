import { DelayedError } from "bullmq";
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports } from "../../db/schema.js";
import { runImport } from "../../domain/imports/run.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import type { Processor } from "../types.js";

export interface ImportProcessorDeps {
  db: Db;
  storage: Storage;
  batchSize: number;
  batchTimeoutMs?: number;
  metrics?: Metrics;
  /** Called once the import reached a finished status (webhooks). */
  onFinished?: (ids: { workspaceId: string; importId: string }) => Promise<void>;
}

/** Runs an import job; on shutdown puts the job back in the queue (no attempt used) to resume from its checkpoint. */
export function importRunProcessor(deps: ImportProcessorDeps): Processor<"import.run"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runImport({ db: deps.db, storage: deps.storage, log: ctx.log, batchSize: deps.batchSize, batchTimeoutMs: deps.batchTimeoutMs, metrics: deps.metrics }, payload, {
        signal: ctx.signal,
        // Not awaited: progress is cosmetic, and a Redis outage must not hold up batches that commit to Postgres.
        onProgress: (processed) => void ctx.job.updateProgress({ processed }).catch(() => {}),
      });
      ctx.log.info({ outcome }, "import run ended");
      if (outcome === "done" || outcome === "validated" || outcome === "failed" || outcome === "cancelled") await deps.onFinished?.(payload);
      if (outcome === "interrupted") {
        await ctx.job.moveToDelayed(Date.now() + 1_000, ctx.token);
        throw new DelayedError();
      }
      return { outcome };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) {
        // Out of retries: say so on the import rather than leave it "processing" forever.
        await deps.db
          .update(imports)
          .set({ status: "failed", failureReason: `The import stopped after ${attempts} attempts: ${(err as Error).message}`, finishedAt: new Date() })
          .where(and(eq(imports.id, payload.importId), inArray(imports.status, ["queued", "processing", "validating"])));
        await deps.onFinished?.(payload).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message }, "could not queue the webhook"));
      }
      throw err;
    }
  };
}
