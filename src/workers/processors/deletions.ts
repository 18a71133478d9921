import { DelayedError } from "bullmq";
import type { Db } from "../../db/client.js";
import { failDeletion } from "../../domain/deletions/lifecycle.js";
import { runDeletion } from "../../domain/deletions/run.js";
import { runRetentionSweep, type SweepSettings } from "../../domain/retention/sweep.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import type { Processor } from "../types.js";

export interface DeletionProcessorDeps {
  db: Db;
  storage: Storage;
  batchSize: number;
  draftRetentionHours: number;
  metrics?: Metrics;
}

/**
 * Runs a deletion job. On shutdown the run stops after the batch in flight and the job is put back (no attempt used);
 * out of retries, the deletion says failed with the last error (committed batches stay erased).
 */
export function deletionRunProcessor(deps: DeletionProcessorDeps): Processor<"deletion.run"> {
  return async (payload, ctx) => {
    try {
      let counted = 0;
      const outcome = await runDeletion(
        {
          ...deps,
          log: ctx.log,
          onBatch: (erased, total) => {
            deps.metrics?.peopleErased.inc(erased - counted);
            counted = erased;
            // Not awaited: progress is cosmetic; the durable count is in Postgres.
            void ctx.job.updateProgress({ deleted: erased, matched: total }).catch(() => {});
          },
        },
        payload,
        ctx.signal,
      );
      ctx.log.info({ outcome }, "deletion run ended");
      if (outcome === "interrupted") {
        await ctx.job.moveToDelayed(Date.now() + 1_000, ctx.token);
        throw new DelayedError();
      }
      return { outcome };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) await failDeletion(deps.db, payload, `after ${attempts} attempts: ${(err as Error).message}`);
      throw err;
    }
  };
}

export function retentionSweepProcessor(deps: { db: Db; storage: Storage; settings: SweepSettings }): Processor<"retention.sweep"> {
  return async (_payload, ctx) => runRetentionSweep({ db: deps.db, storage: deps.storage, log: ctx.log }, deps.settings);
}
