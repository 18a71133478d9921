import { DelayedError } from "bullmq";
import type { Db, Sql } from "../../db/client.js";
import { failExport, runExport } from "../../domain/exports/run.js";
import type { Storage } from "../../storage/storage.js";
import type { Processor } from "../types.js";

export interface ExportProcessorDeps {
  db: Db;
  storage: Storage;
  ttlDays: number;
  timeoutMs: number;
  connect: () => Sql;
}

/**
 * Runs an export job. On shutdown the run is abandoned and the job put back (no attempt used): the next run starts
 * the file over. An export whose job ran out of retries is marked failed with the last error.
 */
export function exportRunProcessor(deps: ExportProcessorDeps): Processor<"export.run"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runExport({ ...deps, log: ctx.log }, payload, ctx.signal);
      ctx.log.info({ outcome }, "export run ended");
      if (outcome === "interrupted") {
        await ctx.job.moveToDelayed(Date.now() + 1_000, ctx.token);
        throw new DelayedError();
      }
      return { outcome };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) {
        await failExport(deps.db, payload.exportId, `The export stopped after ${attempts} attempts: ${(err as Error).message}`);
      }
      throw err;
    }
  };
}
