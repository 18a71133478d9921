import type { Db } from "../../db/client.js";
import { and, eq } from "drizzle-orm";
import { imports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { analyzeAfterBulkWrite } from "../../db/analyze.js";
import { withTimeout } from "../../lib/timeout.js";
import { recordImportRows, type Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import type { BatchContext } from "./handler.js";
import { createRowHandler } from "./handlers.js";
import { importOptionsSchema, type ImportKind } from "./mapping.js";
import { CsvStructureError, readHeaderWidth } from "./reader.js";
import type { Identifier, MappingTarget } from "./targets.js";
import { ensureStaticSegment } from "./segments.js";
import { claimImport, failClaimedImport, finishImport, yieldImport } from "./lifecycle.js";
import { readBatchRecords, type Batch, type BatchPlan } from "./batch-builder.js";
import { readBatches, usesParseThread } from "./batch-source.js";
import { forgetKeySketch, runKeySketch, sketchComplete } from "./key-sketch.js";
import { withDeclaredTypes } from "../attribute-definitions/service.js";
import { CancelRequested, FenceLost, ImportEnded, bounded, commitBatch, isConnectionLost, prepareConnection } from "./batch-commit.js";
import { secretColumns } from "./error-store.js";
import type { Enqueuer } from "../runs.js";
import { claimPart, completePart, createParts, enqueueParts, failImportOfPart, listParts, yieldPart, type ImportPartRow } from "./parts.js";
import type { ReadFrom } from "./reader.js";

/** Without a configured bound a batch may take this long; far above any healthy batch. */
const DEFAULT_BATCH_TIMEOUT_MS = 5 * 60_000;
/** How long a run waits for the queue to say whether others wait for a slot before it assumes none do. */
const QUEUE_ANSWER_MS = 1_000;
/** How long cleanup (terminating a stuck backend, rolling back) may take before the run gives up on the connection. */
const CLEANUP_TIMEOUT_MS = 5_000;

/**
 * `interrupted`: the worker is shutting down; `yielded`: the run gave its slot up to waiting work (its time slice ran
 * out). Both leave the import `processing` at its last checkpoint, for the next run to resume.
 */
export type RunOutcome = "done" | "validated" | "failed" | "cancelled" | "not_runnable" | "fence_lost" | "interrupted" | "yielded" | PartOutcome;
/**
 * `partitioned`: the import's run queued the jobs of its parts (parts.ts), which finish it; `part_done`: a part read
 * its file and other parts still run; `stopped`: the part's import ended (cancelled, failed) while it ran.
 */
export type PartOutcome = "partitioned" | "part_done" | "stopped";

export interface ImportRunDeps {
  db: Db;
  storage: Storage;
  log: Logger;
  batchSize: number;
  /** Largest record parsed (IMPORT_MAX_RECORD_BYTES); a larger one is a record_too_large row error. */
  maxRecordBytes?: number;
  /**
   * Client-side bound on one batch (its statements are also bounded by statement_timeout): a batch that never returns
   * (a lost connection, a hung server) fails the run, which is retried from the checkpoint, instead of holding the job forever.
   */
  batchTimeoutMs?: number;
  /** Where committed rows are counted (the worker process's registry); optional for callers that do not serve metrics. */
  metrics?: Metrics;
  /**
   * IMPORT_TIME_SLICE_MS: once the run has held its slot this long, it stops after its next committed batch when
   * `othersWaiting` says other runs wait for a slot (`yielded`). 0 or absent: it runs to the end.
   */
  timeSliceMs?: number;
  /** Files with at least this many bytes left to read are parsed on a parse thread (batch-source.ts). */
  parseThreadMinBytes?: number;
  /** The parse thread's old-generation heap in MB (IMPORT_PARSE_THREAD_HEAP_MB, default 96). */
  parseThreadHeapMb?: number;
  /** IMPORT_PARTS / IMPORT_PART_MIN_BYTES: a file this big is split into this many parts, one job each (parts.ts). */
  parts?: { count: number; minBytes: number; producer: Enqueuer };
}

export interface ImportRunControl {
  /** Aborted on worker shutdown: the run stops after the batch in flight and can be resumed. */
  signal?: AbortSignal;
  onProgress?: (processed: number) => void | Promise<void>;
  /** How many other runs wait for a slot (asked only once the time slice is over); without it the run never yields. */
  othersWaiting?: () => Promise<number>;
}


type ImportRow = typeof imports.$inferSelect;

/**
 * Runs (or resumes) an import: claims it with a new fencing token, streams the file from the last committed
 * checkpoint, and commits one transaction per batch. A dry run writes the same batches and rolls them back.
 */
export async function runImport(deps: ImportRunDeps, ids: { workspaceId: string; importId: string }, ctl: ImportRunControl = {}): Promise<RunOutcome> {
  const imp = await claimImport(deps.db, ids);
  if (!imp) return "not_runnable";
  const split = await splitIntoParts(deps, imp);
  if (split) return split;
  return runBatches(deps, imp, ctl, {
    from: { byte: imp.checkpointByte, row: imp.checkpointRow, line: imp.checkpointLine },
    createdBefore: imp.created,
    yield: () => yieldImport(deps.db, imp),
    finish: async (segmentId) => (await finishImport(deps.db, imp, segmentId)) ?? "fence_lost",
    fail: async (reason) => {
      await failClaimedImport(deps.db, imp, reason);
      return "failed";
    },
  });
}

/** Runs (or resumes) one part of a split import (parts.ts); the part that completes last finishes the import. */
export async function runImportPart(deps: ImportRunDeps, ids: { workspaceId: string; importId: string; part: number }, ctl: ImportRunControl = {}): Promise<RunOutcome> {
  const claimed = await claimPart(deps.db, ids);
  // Not runnable: the part is done (or the import ended). A part that completed and stopped before it could finish
  // the import left every part done: this run (its job retried) finishes it.
  if (!claimed) return (await finishSplitImport(deps, ids)) ?? "not_runnable";
  const { imp, part } = claimed;
  return runBatches(deps, imp, ctl, {
    from: { byte: part.checkpointByte, row: part.checkpointRow, line: part.checkpointLine },
    createdBefore: part.created,
    part,
    yield: () => yieldPart(deps.db, part),
    fail: async (reason) => ((await failImportOfPart(deps.db, part, reason)) ? "failed" : "stopped"),
    finish: async (segmentId) => {
      const state = await completePart(deps.db, part);
      if (state !== "last") return state === "fence_lost" ? "fence_lost" : "part_done";
      // The import's run may have taken it again meanwhile (a new fence): finish it as it is now.
      return (await finishImport(deps.db, imp, segmentId)) ?? (await finishSplitImport(deps, ids)) ?? "part_done";
    },
  });
}

/**
 * The import's run splits a big import into parts (or finds it split already: a resume, a requeue) and queues the
 * parts not done. Null: it runs as one. A split import whose parts are all done (the last one stopped before it
 * could finish the import) is finished here.
 */
async function splitIntoParts(deps: ImportRunDeps, imp: ImportRow): Promise<RunOutcome | null> {
  // Events imports are not split: their rows stand alone, so the parts would go by row number, and two parts could
  // both create the same missing person (createMissingPeople).
  if (imp.dryRun || imp.kind === "events") return null;
  let parts = await listParts(deps.db, imp.id);
  if (!parts.length) {
    const cfg = deps.parts;
    if (!cfg || cfg.count < 2 || imp.checkpointRow > 0) return null;
    const bytes = (imp.storedBytes ?? imp.sizeBytes) - imp.dataOffset;
    if (bytes < cfg.minBytes) return null;
    await createParts(deps.db, imp, cfg.count);
    parts = await listParts(deps.db, imp.id);
  }
  if (!deps.parts) throw new Error("this import is split into parts, and this worker has no queue to run them");
  const queued = await enqueueParts(deps.parts.producer, imp, parts);
  deps.log.info({ importId: imp.id, parts: parts.length, queued }, "import split into parts; their jobs are queued");
  if (queued > 0) return "partitioned";
  return (await finishSplitImport(deps, { workspaceId: imp.workspaceId, importId: imp.id })) ?? "fence_lost";
}

/**
 * Finishes a split import whose parts are all done while it still says processing (its last part stopped before it
 * could, or finished under an older fence). Null when it is not such an import.
 */
async function finishSplitImport(deps: ImportRunDeps, ids: { workspaceId: string; importId: string }): Promise<"done" | null> {
  const [imp] = await deps.db
    .select()
    .from(imports)
    .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId)));
  if (!imp || imp.status !== "processing") return null;
  const parts = await listParts(deps.db, imp.id);
  if (!parts.length || parts.some((p) => p.status !== "done")) return null;
  const options = importOptionsSchema.parse(imp.options);
  const segment = options.createSegment ? await ensureStaticSegment(deps.db, imp.workspaceId, options.createSegment.name) : null;
  return (await finishImport(deps.db, imp, segment && "id" in segment ? segment.id : null)) === "done" ? "done" : null;
}

/** What differs between a whole import's run and one part's. */
interface RunState {
  from: ReadFrom;
  /** People the import (or the part) created in earlier runs. */
  createdBefore: number;
  part?: ImportPartRow;
  yield(): Promise<void>;
  finish(createdSegmentId: string | null): Promise<RunOutcome>;
  /** The import cannot go on (a malformed file, a segment it cannot create): failed, while the run holds its fence. Committed batches stay. */
  fail(reason: string): Promise<RunOutcome>;
}

async function runBatches(deps: ImportRunDeps, imp: ImportRow, ctl: ImportRunControl, state: RunState): Promise<RunOutcome> {
  // A run that yielded its slot keeps its key sketch for its next slice; any other end forgets it.
  let outcome: RunOutcome | undefined;
  try {
    outcome = await runBatchesOnce(deps, imp, ctl, state);
    return outcome;
  } finally {
    if (outcome !== "yielded") forgetKeySketch(imp.id, state.part?.part);
  }
}

async function runBatchesOnce(deps: ImportRunDeps, imp: ImportRow, ctl: ImportRunControl, state: RunState): Promise<RunOutcome> {
  const part = state.part;
  const sliceEndsAt = deps.timeSliceMs ? Date.now() + deps.timeSliceMs : Infinity;
  const log = deps.log.child({ importId: imp.id, workspaceId: imp.workspaceId, ...(part ? { part: part.part, fence: part.fence } : { fence: imp.fence }) });
  // Declared attribute types apply where options.attributeTypes says nothing (a cell that does not fit is a row error).
  const options = await withDeclaredTypes(deps.db, imp.workspaceId, importOptionsSchema.parse(imp.options));
  const mapping = (imp.mapping ?? {}) as Record<string, MappingTarget>;
  const identifier = imp.identifier as Identifier;
  const headerOf: Record<string, string> = {};
  for (const [header, target] of Object.entries(mapping)) if (target !== "ignore") headerOf[target] ??= header;

  let createdSegmentId: string | null = null;
  if (options.createSegment && !imp.dryRun) {
    const seg = await ensureStaticSegment(deps.db, imp.workspaceId, options.createSegment.name);
    if ("error" in seg) return state.fail(seg.error);
    createdSegmentId = seg.id;
  }
  const batchCtx: BatchContext = { workspaceId: imp.workspaceId, importId: imp.id, identifier, options, headerOf, createdSegmentId, dryRun: imp.dryRun };
  const handler = createRowHandler(imp.kind as ImportKind, batchCtx, imp.headers, mapping);
  const batchSize = Math.min(deps.batchSize, handler.maxBatchSize ?? deps.batchSize);
  const secrets = secretColumns(imp.kind as ImportKind, imp.headers, mapping);
  // Trailing unnamed header cells (`Email;Name;;`) are not in imp.headers: rows may carry blank cells under them.
  const fileWidth = await readHeaderWidth(deps.storage, imp.storageKey, imp.delimiter, imp.dataOffset);

  const conn = await deps.db.$client.reserve();
  let connectionLost = false;
  // Stops reading the file's keys (runKeySketch) when the run ends before that reading does.
  const sketching = new AbortController();
  const statistics = growingWorkspaceStatistics(deps.db, log, imp.dryRun ? 0 : state.createdBefore);
  try {
    const backendPid = await prepareConnection(conn, handler);
    const batchTimeoutMs = deps.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS;
    let pending: Promise<void> | null = null;
    let processed = state.from.row;
    /**
     * The slice is over and someone waits. A queue that cannot answer is no reason to stop, nor to wait: a frozen Redis
     * (paused, or a network that drops packets) answers nothing, and the batches meanwhile go on committing.
     */
    const othersWaiting = ctl.othersWaiting;
    const shouldYield = async () =>
      Date.now() >= sliceEndsAt &&
      othersWaiting !== undefined &&
      (await withTimeout(othersWaiting(), QUEUE_ANSWER_MS, () => new Error("the queue did not answer")).catch(() => 0)) > 0;
    const flush = async (b: Batch, last: boolean) => {
      if (pending) await pending;
      // A batch parsed while the file's key sketch was still being read marked none of its rows unique: marked now,
      // if the sketch is complete by the time the batch is written.
      if (plan.repeats && !b.sketched && b.encoded?.mayRepeat && handler.markUnique && sketchComplete(plan.repeats)) handler.markUnique(b.encoded, plan.repeats);
      const readRecords = (batch: Batch, rows: ReadonlySet<number>) => readBatchRecords(deps.storage, plan, batch, rows);
      const committed = bounded(commitBatch({ conn, imp, ctx: batchCtx, handler, secrets, batch: b, log: deps.log, readRecords, part: part && { index: part.part, fence: part.fence } }), batchTimeoutMs, async () => {
        // The connection is stuck: end its backend (its open transaction rolls back) so neither it nor its locks linger.
        log.error({ batchTimeoutMs, backendPid }, "import batch did not finish in time; terminating its connection");
        await bounded(deps.db.$client`select pg_terminate_backend(${backendPid})`, CLEANUP_TIMEOUT_MS).catch(() => {});
      });
      pending = committed.then(async (counts) => {
        if (deps.metrics && !imp.dryRun) recordImportRows(deps.metrics, imp.kind, counts);
        if (imp.kind === "contacts" && !imp.dryRun) statistics.created(counts.created);
        processed += b.rows;
        await ctl.onProgress?.(processed);
        if (ctl.signal?.aborted) throw new Interrupted();
        // The last batch finishes the run anyway: giving the slot up there would only cost a resume.
        if (!last && (await shouldYield())) throw new Yielded();
      });
      // Surface a failed write at the next await, not as an unhandled rejection.
      pending.catch(() => {});
    };
    const plan: BatchPlan = {
      kind: imp.kind as ImportKind,
      ctx: batchCtx,
      headers: imp.headers,
      mapping,
      storageKey: imp.storageKey,
      delimiter: imp.delimiter,
      from: state.from,
      maxRecordBytes: deps.maxRecordBytes,
      batchSize,
      fileWidth,
      ...(part ? { part: { index: part.part, count: part.parts } } : {}),
    };
    try {
      const sizeBytes = await deps.storage.size(imp.storageKey);
      const remainingBytes = sizeBytes - state.from.byte;
      plan.repeats = await runKeySketch(
        deps.db,
        deps.storage,
        plan,
        { importId: imp.id, part: part?.part, dataStart: { byte: imp.dataOffset, row: 0, line: imp.headerLines }, from: state.from, sizeBytes, sample: imp.sample },
        {
          signal: sketching.signal,
          onComplete: (ms, bytes) => log.info({ ms, bytes, afterRow: processed }, "import has its file's key sketch"),
          onError: (err) => log.warn({ err }, "reading the file's keys failed; the run records every row in its ledger"),
        },
      );
      const onThread = usesParseThread(deps.storage, remainingBytes, deps.parseThreadMinBytes);
      if (onThread) log.info({ remainingBytes }, "import parses its rows on a parse thread");
      const outOfMemory = (row: number) => log.warn({ afterRow: row }, "the parse thread ran out of memory; parsing the rest on the run's thread");
      for await (const { batch, last } of readBatches(deps.storage, plan, onThread, outOfMemory, deps.parseThreadHeapMb)) await flush(batch, last);
      if (pending) await pending;
    } catch (err) {
      if (pending) await (pending as Promise<void>).catch(() => {});
      connectionLost = isConnectionLost(err);
      if (err instanceof CsvStructureError) {
        log.warn({ line: err.line }, "import file is malformed");
        return state.fail(err.message);
      }
      if (err instanceof FenceLost) {
        log.warn("another run took this import over; stopping");
        return "fence_lost";
      }
      if (err instanceof CancelRequested) return "cancelled";
      if (err instanceof ImportEnded) return "stopped";
      if (err instanceof Interrupted) return "interrupted";
      if (part && isCollisionWithAnotherPart(err)) {
        // Two parts wrote the same unique value (an external id, an email key: two people of different parts) or
        // locked the same rows in another order; PostgreSQL failed this batch. Its part resumes from its checkpoint
        // behind the waiting jobs, no attempt used: the other part's rows are committed then, and the row that lost
        // fails as a conflict, as in one run.
        log.warn({ code: (err as { code?: unknown }).code, processed }, "a batch collided with another part's; resuming it from its checkpoint");
        await state.yield();
        return "yielded";
      }
      if (err instanceof Yielded) {
        log.info({ processed }, "import time slice over, others waiting; yielding its slot");
        await state.yield();
        return "yielded";
      }
      throw err;
    }
  } finally {
    sketching.abort();
    await statistics.settled();
    // postgres.js already moved a dead connection to its closed queue; releasing it would hand the pool a null socket
    // (the next pooled query throws an uncaught TypeError and hangs). Left alone, the pool reconnects it on demand.
    if (!connectionLost) {
      await bounded(conn.unsafe("rollback"), CLEANUP_TIMEOUT_MS).catch(() => {});
      conn.release();
    }
  }
  return state.finish(createdSegmentId);
}


/**
 * Keeps people's planner statistics aware of a workspace this run is filling. Statistics that predate the workspace
 * (autovacuum analysed people before its first import) say it has no people, so the planner reads the batches'
 * per-row probes for a person by (workspace, email key), or external id or username, through the (workspace_id, id)
 * index and filters the whole workspace for each row: a 5M-row import into a new workspace stood still at 50,000
 * rows (BENCHMARKS.md, 2026-11-30). Once the statistics count the workspace's people, the unique index is the cheaper
 * path again. So the import analyses people's workspace_id, what the probes' estimate turns on, when the people it
 * created reach 5,000, and again at each fourfold of that (20,000, 80,000 …): ~0.1 s each for 1M people, where the
 * whole table took ~0.35 s (1.6 s of a 1M-row import's PostgreSQL CPU). A big import's job analyses the whole table
 * once the import is done (import-run.ts). `createdBefore`: what earlier runs of the import created (a run resumed
 * after its time slice must not analyse again at its own first 5,000).
 * The ANALYZE runs on a pooled connection beside the batches (it blocks no write), one at a time; the run waits for
 * the last one only as it ends, so its connection is back in the pool before the run returns.
 */
function growingWorkspaceStatistics(db: Db, log: Logger, createdBefore: number) {
  let created = createdBefore;
  let next = 5_000;
  while (next <= created) next *= 4;
  let running: Promise<unknown> = Promise.resolve();
  return {
    created(n: number): void {
      created += n;
      if (created < next) return;
      while (next <= created) next *= 4;
      const rows = created;
      running = running.then(() => analyzeAfterBulkWrite(db, "people", rows, log, 0, "workspace_id"));
    },
    settled: () => running,
  };
}

/** unique_violation, deadlock_detected: what two parts writing at once can run into (see runBatches). */
function isCollisionWithAnotherPart(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "23505" || code === "40P01";
}

class Interrupted extends Error {}
class Yielded extends Error {}

