import type { Db } from "../../db/client.js";
import { deletionRuns } from "../../domain/deletions/lifecycle.js";
import { runDeletion } from "../../domain/deletions/run.js";
import { runRetentionSweep, type SweepSettings } from "../../domain/retention/sweep.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import type { RunSpec } from "../run-processor.js";
import type { Processor } from "../types.js";

export interface DeletionProcessorDeps {
  db: Db;
  storage: Storage;
  batchSize: number;
  draftRetentionHours: number;
  metrics?: Metrics;
}

/** A deletion run's job as the wrapper sees it (fail for good): see src/workers/run-processor.ts. */
export const deletionRunJob: Pick<RunSpec<"deletion.run">, "owner" | "ref"> = {
  owner: () => deletionRuns,
  ref: (p) => ({ workspaceId: p.workspaceId, id: p.deletionId }),
};

/** Runs a deletion job (the wrapper puts it back on shutdown: the run resumes with whoever is left). */
export function deletionRun(deps: DeletionProcessorDeps): RunSpec<"deletion.run"> {
  return {
    ...deletionRunJob,
    run: (payload, ctx) => {
      let counted = 0;
      return runDeletion(
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
    },
  };
}

export function retentionSweepProcessor(deps: { db: Db; storage: Storage; settings: SweepSettings }): Processor<"retention.sweep"> {
  return async (_payload, ctx) => runRetentionSweep({ db: deps.db, storage: deps.storage, log: ctx.log }, deps.settings);
}
