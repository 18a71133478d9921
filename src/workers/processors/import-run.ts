import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { imports } from "../../db/schema.js";
import { importRuns } from "../../domain/imports/lifecycle.js";
import { runImport, runImportPart, type ImportRunDeps } from "../../domain/imports/run.js";
import type { Metrics } from "../../metrics/metrics.js";
import { refreshStaticMemberCounts } from "../../domain/segments/recompute.js";
import { requestWorkspaceRecompute, type Enqueuer } from "../../domain/segments/triggers.js";
import type { Storage } from "../../storage/storage.js";
import { expireUploadAtEnd } from "../../domain/retention/uploads.js";
import { analyzeAfterBulkWrite } from "../../db/analyze.js";
import type { RunSpec } from "../run-processor.js";
import type { JobContext } from "../types.js";

export interface ImportProcessorDeps {
  db: Db;
  storage: Storage;
  batchSize: number;
  maxRecordBytes?: number;
  batchTimeoutMs?: number;
  metrics?: Metrics;
  /** IMPORT_TIME_SLICE_MS: see ImportRunDeps.timeSliceMs. */
  timeSliceMs?: number;
  /** IMPORT_PARSE_THREAD_MIN_BYTES: see ImportRunDeps.parseThreadMinBytes. */
  parseThreadMinBytes?: number;
  /** IMPORT_PARSE_THREAD_HEAP_MB: see ImportRunDeps.parseThreadHeapMb. */
  parseThreadHeapMb?: number;
  /** IMPORT_PARTS and IMPORT_PART_MIN_BYTES: see ImportRunDeps.parts. */
  parts?: number;
  partMinBytes?: number;
  /** ANALYZE_AFTER_ROWS: an import that created or updated this many people refreshes people's statistics. */
  analyzeAfterRows?: number;
  producer: Enqueuer;
  /** UPLOAD_RETENTION_HOURS: 0 deletes every upload when its import ends (team-member uploads always are). */
  uploadRetentionHours: number;
}

/**
 * An import run's job as the wrapper sees it (fail, webhook, and the upload that must not outlive a team-member
 * import): see src/workers/run-processor.ts.
 */
export function importRunJob(deps: Pick<ImportProcessorDeps, "db" | "storage" | "uploadRetentionHours">): Pick<RunSpec<"import.run" | "import.small" | "import.part">, "owner" | "ref" | "ended"> {
  return {
    owner: () => importRuns,
    ref: (p) => ({ workspaceId: p.workspaceId, id: p.importId }),
    ended: async (p, log) => {
      await expireUploadAtEnd(deps, p.importId).catch((err: Error) => log.warn({ err: err.message }, "could not delete the upload at the import's end; the retention sweep will"));
    },
  };
}

/**
 * Runs an import job (the wrapper puts it back on shutdown, or behind waiting jobs when its time slice is over, to
 * resume from its checkpoint); refreshes segments after it.
 */
export function importRun(deps: ImportProcessorDeps): RunSpec<"import.run" | "import.small"> {
  return {
    ...importRunJob(deps),
    run: (payload, ctx) => runImport(runDeps(deps, ctx), payload, runControl(ctx)),
    afterFinished: async (payload, outcome, ctx) => {
      if (outcome === "done") await refreshSegmentsAfterImport(deps, payload, ctx.log);
    },
  };
}

/** Runs one part of a split import (src/domain/imports/parts.ts); the part that finishes the import refreshes segments. */
export function importPart(deps: ImportProcessorDeps): RunSpec<"import.part"> {
  return {
    ...importRunJob(deps),
    run: (payload, ctx) => runImportPart(runDeps(deps, ctx), payload, runControl(ctx)),
    afterFinished: async (payload, outcome, ctx) => {
      if (outcome === "done") await refreshSegmentsAfterImport(deps, payload, ctx.log);
    },
  };
}

function runDeps(deps: ImportProcessorDeps, ctx: JobContext): ImportRunDeps {
  return {
    db: deps.db,
    storage: deps.storage,
    log: ctx.log,
    batchSize: deps.batchSize,
    maxRecordBytes: deps.maxRecordBytes,
    batchTimeoutMs: deps.batchTimeoutMs,
    metrics: deps.metrics,
    timeSliceMs: deps.timeSliceMs,
    parseThreadMinBytes: deps.parseThreadMinBytes,
    parseThreadHeapMb: deps.parseThreadHeapMb,
    parts: { count: deps.parts ?? 1, minBytes: deps.partMinBytes ?? 0, producer: deps.producer },
  };
}

function runControl(ctx: JobContext) {
  return {
    signal: ctx.signal,
    othersWaiting: ctx.waiting,
    // Not awaited: progress is cosmetic, and a Redis outage must not hold up batches that commit to Postgres.
    onProgress: (processed: number) => void ctx.job.updateProgress({ processed }).catch(() => {}),
  };
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
  // Before the recompute below plans its statements over people.
  if (row.kind === "contacts") await analyzeAfterBulkWrite(deps.db, "people", row.created + row.updated, log, deps.analyzeAfterRows);
  // Static members the import added are not counted by its batches.
  await refreshStaticMemberCounts(deps.db, ids.workspaceId);
  if (row.created + row.updated === 0) return;
  // The import itself succeeded: a queue hiccup here must not fail it; the nightly refresh catches up.
  await requestWorkspaceRecompute(deps.db, deps.producer, ids.workspaceId).catch((err: Error) =>
    log.warn({ err }, "could not queue the segment recompute after an import"),
  );
}
