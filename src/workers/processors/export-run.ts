import type { Db, Sql } from "../../db/client.js";
import { exportRuns } from "../../domain/exports/lifecycle.js";
import { runExport } from "../../domain/exports/run.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import type { RunSpec } from "../run-processor.js";

export interface ExportProcessorDeps {
  db: Db;
  storage: Storage;
  ttlDays: number;
  timeoutMs: number;
  connect: () => Sql;
  metrics?: Metrics;
}

/** Identifies an export run's job for the wrapper (fail, webhook): see src/workers/run-processor.ts. */
export const exportRunJob: Pick<RunSpec<"export.run">, "owner" | "ref"> = {
  owner: () => exportRuns,
  ref: (p) => ({ workspaceId: p.workspaceId, id: p.exportId }),
};

/** Runs an export job. On shutdown the run is abandoned (the wrapper puts the job back): the next run starts the file over. */
export function exportRun(deps: ExportProcessorDeps): RunSpec<"export.run"> {
  return {
    ...exportRunJob,
    run: (payload, ctx) => runExport({ ...deps, log: ctx.log }, payload, ctx.signal),
  };
}
