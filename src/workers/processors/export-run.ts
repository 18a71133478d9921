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
  /** Called once the export ended done or failed (webhooks). */
  onFinished?: (ids: { workspaceId: string; exportId: string }) => Promise<void>;
}

/**
 * Runs an export job. On shutdown the run is abandoned and the job put back (no attempt used): the next run starts
 * the file over. An export whose job ran out of retries is marked failed with the last error. A finished export
 * (done or failed, however it failed) is announced to its callbackUrl.
 */
export function exportRunProcessor(deps: ExportProcessorDeps): Processor<"export.run"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runExport({ ...deps, log: ctx.log }, payload, ctx.signal);
      ctx.log.info({ outcome }, "export run ended");
      // The export itself ended: a webhook that cannot be queued must not make the job retry it.
      if (outcome === "done" || outcome === "failed") {
        await deps.onFinished?.(payload).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message }, "could not queue the webhook"));
      }
      if (outcome === "interrupted") {
        await ctx.job.moveToDelayed(Date.now() + 1_000, ctx.token);
        throw new DelayedError();
      }
      return { outcome };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      const attempts = ctx.job.opts.attempts ?? 1;
      if (ctx.job.attemptsMade + 1 >= attempts) {
        const failed = await failExport(deps.db, payload.exportId, `The export stopped after ${attempts} attempts: ${(err as Error).message}`);
        // Only when this run failed it: an export another run finished meanwhile was announced by that run.
        if (failed) await deps.onFinished?.(payload).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message }, "could not queue the webhook"));
      }
      throw err;
    }
  };
}
