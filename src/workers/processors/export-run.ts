import type { Db } from "../../db/client.js";
import { failExport, runExport } from "../../domain/exports/run.js";
import type { Storage } from "../../storage/storage.js";
import type { Processor } from "../types.js";

export interface ExportProcessorDeps {
  db: Db;
  storage: Storage;
  ttlDays: number;
}

/** Runs an export job; an export whose job ran out of retries is marked failed with the last error. */
export function exportRunProcessor(deps: ExportProcessorDeps): Processor<"export.run"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runExport({ db: deps.db, storage: deps.storage, log: ctx.log, ttlDays: deps.ttlDays }, payload);
      ctx.log.info({ outcome }, "export run ended");
      return { outcome };
    } catch (err) {
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) {
        await failExport(deps.db, payload.exportId, `The export stopped after ${attempts} attempts: ${(err as Error).message}`);
      }
      throw err;
    }
  };
}
