import { DelayedError } from "bullmq";
import { and, eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports } from "../../db/schema.js";
import { runImport } from "../../domain/imports/run.js";
import type { Metrics } from "../../metrics/metrics.js";
import { refreshStaticMemberCounts } from "../../domain/segments/recompute.js";
import { requestWorkspaceRecompute, type Enqueuer } from "../../domain/segments/triggers.js";
import type { Storage } from "../../storage/storage.js";
import type { JobContext, Processor } from "../types.js";
import { expireUploadAtEnd } from "../../domain/retention/uploads.js";

export interface ImportProcessorDeps {
  db: Db;
  storage: Storage;
  batchSize: number;
  maxRecordBytes?: number;
  batchTimeoutMs?: number;
  metrics?: Metrics;
  /** Called once the import reached a finished status (webhooks). */
  onFinished?: (ids: { workspaceId: string; importId: string }) => Promise<void>;
  producer: Enqueuer;
  /** UPLOAD_RETENTION_HOURS: 0 deletes every upload when its import ends (team-member uploads always are). */
  uploadRetentionHours: number;
}

/** Runs an import job; on shutdown puts the job back in the queue (no attempt used) to resume from its checkpoint. */
export function importRunProcessor(deps: ImportProcessorDeps): Processor<"import.run"> {
  return async (payload, ctx) => {
    try {
      const outcome = await runImport({ db: deps.db, storage: deps.storage, log: ctx.log, batchSize: deps.batchSize, maxRecordBytes: deps.maxRecordBytes, batchTimeoutMs: deps.batchTimeoutMs, metrics: deps.metrics }, payload, {
        signal: ctx.signal,
        // Not awaited: progress is cosmetic, and a Redis outage must not hold up batches that commit to Postgres.
        onProgress: (processed) => void ctx.job.updateProgress({ processed }).catch(() => {}),
      });
      ctx.log.info({ outcome }, "import run ended");
      if (outcome === "done" || outcome === "failed" || outcome === "cancelled") await expireAtEnd(deps, payload.importId, ctx.log);
      if (outcome === "done" || outcome === "validated" || outcome === "failed" || outcome === "cancelled") await deps.onFinished?.(payload);
      if (outcome === "done") await refreshSegmentsAfterImport(deps, payload, ctx.log);
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
        await expireAtEnd(deps, payload.importId, ctx.log);
        await deps.onFinished?.(payload).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message }, "could not queue the webhook"));
      }
      throw err;
    }
  };
}

/** The import ended: its upload goes now when it must (a failure here is retried by the retention sweep). */
async function expireAtEnd(deps: ImportProcessorDeps, importId: string, log: JobContext["log"]): Promise<void> {
  await expireUploadAtEnd(deps, importId).catch((err: Error) => log.warn({ err: err.message }, "could not delete the upload at the import's end; the retention sweep will"));
}

/**
 * People or their events changed: the workspace's dynamic segments are recomputed (one queued request per
 * workspace at a time). An events import counts the events it wrote as `created`; team members are not people.
 */
async function refreshSegmentsAfterImport(deps: ImportProcessorDeps, ids: { workspaceId: string; importId: string }, log: JobContext["log"]) {
  const [row] = await deps.db
    .select({ kind: imports.kind, created: imports.created, updated: imports.updated })
    .from(imports)
    .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId)));
  // Team members are not people: nothing a segment looks at changed.
  if (!row || row.kind === "members") return;
  // Static members the import added are not counted by its batches.
  await refreshStaticMemberCounts(deps.db, ids.workspaceId);
  if (row.created + row.updated === 0) return;
  // The import itself succeeded: a queue hiccup here must not fail it; the nightly refresh catches up.
  await requestWorkspaceRecompute(deps.db, deps.producer, ids.workspaceId).catch((err: Error) =>
    log.warn({ err }, "could not queue the segment recompute after an import"),
  );
}
