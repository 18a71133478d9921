import type { Db } from "../../db/client.js";
import { deletionRuns } from "../../domain/deletions/lifecycle.js";
import { runDeletion } from "../../domain/deletions/run.js";
import { importUndoRuns, runUndo } from "../../domain/imports/undo.js";
import { requestWorkspaceRecompute, type Enqueuer } from "../../domain/segments/triggers.js";
import { refreshStaticMemberCounts } from "../../domain/segments/recompute.js";
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

/** An import undo's job as the wrapper sees it (fail for good puts the import back, see failUndo). */
export const importUndoJob: Pick<RunSpec<"import.undo">, "owner" | "ref"> = {
  owner: () => importUndoRuns,
  ref: (p) => ({ workspaceId: p.workspaceId, id: p.importId }),
};

/** Runs (or resumes) an import undo; once undone, static counts are refreshed and the dynamic segments recomputed. */
export function importUndo(deps: { db: Db; producer: Enqueuer; batchSize: number }): RunSpec<"import.undo"> {
  return {
    ...importUndoJob,
    run: (payload, ctx) => runUndo(deps, payload, ctx.signal),
    afterFinished: async (payload, _outcome, ctx) => {
      await refreshStaticMemberCounts(deps.db, payload.workspaceId);
      // The undo itself succeeded: a queue hiccup must not fail it; the nightly refresh catches up.
      await requestWorkspaceRecompute(deps.db, deps.producer, payload.workspaceId).catch((err: Error) =>
        ctx.log.warn({ err }, "could not queue the segment recompute after an undo"),
      );
    },
  };
}

export function retentionSweepProcessor(deps: { db: Db; storage: Storage; settings: SweepSettings }): Processor<"retention.sweep"> {
  return async (_payload, ctx) => runRetentionSweep({ db: deps.db, storage: deps.storage, log: ctx.log }, deps.settings);
}
