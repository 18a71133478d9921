import type { ReservedSql } from "postgres";
import type { Db } from "../../db/client.js";
import { isConnectionLostCode } from "../../db/connection-errors.js";
import type { imports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { recordImportRows, type Metrics } from "../../metrics/metrics.js";
import type { Storage } from "../../storage/storage.js";
import { emptyCounts, type BatchContext, type BatchResult, type Outcome, type RowHandler, type StagedRow } from "./handler.js";
import { createRowHandler } from "./handlers.js";
import { importOptionsSchema, type ImportKind } from "./mapping.js";
import { CsvStructureError, readHeaderWidth, readRecords, type ParsedRecord } from "./reader.js";
import { dropBlankTail } from "./sniff.js";
import { SKIP_CODES, rowError, type RowError } from "./rows.js";
import type { Identifier, MappingTarget } from "./targets.js";
import { ensureStaticSegment } from "./segments.js";
import { REDACTED, hiddenColumns } from "./members/redact.js";
import { claimImport, failClaimedImport, finishImport } from "./lifecycle.js";

/** Errors kept per import (all are counted): enough to fix a file, bounded so a garbage file cannot fill the disk. */
export const MAX_STORED_ERRORS = 10_000;
/** A batch also ends at this many bytes of CSV, so very wide or very long rows cannot swell a batch's memory. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
/** Without a configured bound a batch may take this long; far above any healthy batch. */
const DEFAULT_BATCH_TIMEOUT_MS = 5 * 60_000;
/** How long cleanup (terminating a stuck backend, rolling back) may take before the run gives up on the connection. */
const CLEANUP_TIMEOUT_MS = 5_000;
/** Temp tables live in temp_buffers; the 8 MB default spills a 10k-row batch to disk. */
const TEMP_BUFFERS = "128MB";

export type RunOutcome = "done" | "validated" | "failed" | "cancelled" | "not_runnable" | "fence_lost" | "interrupted";

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
}

export interface ImportRunControl {
  /** Aborted on worker shutdown: the run stops after the batch in flight and can be resumed. */
  signal?: AbortSignal;
  onProgress?: (processed: number) => void | Promise<void>;
}

class FenceLost extends Error {}
class CancelRequested extends Error {}

interface Batch {
  staged: StagedRow[];
  /** Rows of this batch that failed validation or were superseded inside the batch. */
  errors: RowError[];
  failed: number;
  skipped: number;
  rows: number;
  /** Byte offset where the batch starts in the stored file. */
  startByte: number;
  endByte: number;
  endLine: number;
  /** The cells of each row of the batch, so an error line can repeat the row for fixing and re-upload. */
  records: Map<number, string[]>;
}

type ImportRow = typeof imports.$inferSelect;

/**
 * Runs (or resumes) an import: claims it with a new fencing token, streams the file from the last committed
 * checkpoint, and commits one transaction per batch. A dry run writes the same batches and rolls them back.
 */
export async function runImport(deps: ImportRunDeps, ids: { workspaceId: string; importId: string }, ctl: ImportRunControl = {}): Promise<RunOutcome> {
  const imp = await claimImport(deps.db, ids);
  if (!imp) return "not_runnable";
  const log = deps.log.child({ importId: imp.id, workspaceId: imp.workspaceId, fence: imp.fence });
  const options = importOptionsSchema.parse(imp.options);
  const mapping = (imp.mapping ?? {}) as Record<string, MappingTarget>;
  const identifier = imp.identifier as Identifier;
  const headerOf: Record<string, string> = {};
  for (const [header, target] of Object.entries(mapping)) if (target !== "ignore") headerOf[target] ??= header;

  let createdSegmentId: string | null = null;
  if (options.createSegment && !imp.dryRun) {
    const seg = await ensureStaticSegment(deps.db, imp.workspaceId, options.createSegment.name);
    if ("error" in seg) return fail(deps.db, imp, seg.error);
    createdSegmentId = seg.id;
  }
  const batchCtx: BatchContext = { workspaceId: imp.workspaceId, importId: imp.id, identifier, options, headerOf, createdSegmentId, dryRun: imp.dryRun };
  const handler = createRowHandler(imp.kind as ImportKind, batchCtx, imp.headers, mapping);
  const batchSize = Math.min(deps.batchSize, handler.maxBatchSize ?? deps.batchSize);
  const secrets = secretColumns(imp.kind as ImportKind, imp.headers, mapping);
  // Trailing unnamed header cells (`Email;Name;;`) are not in imp.headers: blank cells under them are dropped per row.
  const fileWidth = await readHeaderWidth(deps.storage, imp.storageKey, imp.delimiter, imp.dataOffset);

  const conn = await deps.db.$client.reserve();
  let connectionLost = false;
  try {
    const backendPid = await prepareConnection(conn, handler);
    const batchTimeoutMs = deps.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS;
    let pending: Promise<void> | null = null;
    let batch = newBatch(imp.checkpointByte);
    let processed = imp.checkpointRow;
    const seen = new Map<string, number>();
    const flush = async (b: Batch) => {
      if (pending) await pending;
      const committed = bounded(commitBatch(conn, imp, batchCtx, handler, secrets, b, deps.log), batchTimeoutMs, async () => {
        // The connection is stuck: end its backend (its open transaction rolls back) so neither it nor its locks linger.
        log.error({ batchTimeoutMs, backendPid }, "import batch did not finish in time; terminating its connection");
        await bounded(deps.db.$client`select pg_terminate_backend(${backendPid})`, CLEANUP_TIMEOUT_MS).catch(() => {});
      });
      pending = committed.then(async (counts) => {
        if (deps.metrics && !imp.dryRun) recordImportRows(deps.metrics, imp.kind, counts);
        processed += b.rows;
        await ctl.onProgress?.(processed);
        if (ctl.signal?.aborted) throw new Interrupted();
      });
      // Surface a failed write at the next await, not as an unhandled rejection.
      pending.catch(() => {});
    };
    try {
      for await (const rec of readRecords(deps.storage, imp.storageKey, imp.delimiter, {
        byte: imp.checkpointByte,
        row: imp.checkpointRow,
        line: imp.checkpointLine,
      }, deps.maxRecordBytes)) {
        if (fileWidth > imp.headers.length) rec.record = dropBlankTail(rec.record, imp.headers.length, fileWidth);
        addRecord(batch, seen, rec, handler, headerOf[identifier] ?? identifier);
        if (batch.rows >= batchSize || batch.endByte - batch.startByte >= MAX_BATCH_BYTES) {
          await flush(batch);
          batch = newBatch(batch.endByte);
          seen.clear();
        }
      }
      if (batch.rows > 0) await flush(batch);
      if (pending) await pending;
    } catch (err) {
      if (pending) await (pending as Promise<void>).catch(() => {});
      connectionLost = isConnectionLost(err);
      if (err instanceof CsvStructureError) {
        log.warn({ line: err.line }, "import file is malformed");
        return fail(deps.db, imp, err.message);
      }
      if (err instanceof FenceLost) {
        log.warn("another run took this import over; stopping");
        return "fence_lost";
      }
      if (err instanceof CancelRequested) return "cancelled";
      if (err instanceof Interrupted) return "interrupted";
      throw err;
    }
  } finally {
    // postgres.js already moved a dead connection to its closed queue; releasing it would hand the pool a null socket
    // (the next pooled query throws an uncaught TypeError and hangs). Left alone, the pool reconnects it on demand.
    if (!connectionLost) {
      await bounded(conn.unsafe("rollback"), CLEANUP_TIMEOUT_MS).catch(() => {});
      conn.release();
    }
  }
  return (await finishImport(deps.db, imp, createdSegmentId)) ?? "fence_lost";
}

/** Ends this run as failed (only while it holds the fence); committed batches stay and the counts say so. */
async function fail(db: Db, imp: ImportRow, reason: string): Promise<RunOutcome> {
  await failClaimedImport(db, imp, reason);
  return "failed";
}

/** The reserved connection is gone (terminated, network lost, or ended by us after a batch timeout). */
function isConnectionLost(err: unknown): boolean {
  return err instanceof BatchTimeoutError || isConnectionLostCode((err as { code?: unknown } | null)?.code);
}

export class BatchTimeoutError extends Error {
  override name = "BatchTimeoutError";
}

/** Rejects with BatchTimeoutError when `p` has not settled within `ms` (after running `onTimeout`). */
async function bounded<T>(p: Promise<T>, ms: number, onTimeout?: () => Promise<void>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void (onTimeout ?? (async () => {}))().finally(() => reject(new BatchTimeoutError(`The batch did not finish within ${ms} ms.`)));
    }, ms);
  });
  p.catch(() => {});
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

class Interrupted extends Error {}

function newBatch(startByte: number): Batch {
  return { staged: [], errors: [], failed: 0, skipped: 0, rows: 0, startByte, endByte: startByte, endLine: 0, records: new Map() };
}

function addRecord(
  batch: Batch,
  seen: Map<string, number>,
  rec: ParsedRecord,
  handler: RowHandler,
  identifierHeader: string,
): void {
  batch.rows += 1;
  batch.endByte = rec.endByte;
  batch.endLine = rec.endLine;
  if (rec.tooLarge) {
    // Nothing of the record was read but its first bytes: no cells to repeat, the start of the line is the value.
    const { sizeBytes, startLine, limit } = rec.tooLarge;
    batch.failed += 1;
    batch.errors.push(rowError(rec.row, null, rec.raw, "record_too_large", `The record starting on line ${startLine} is ${sizeBytes} bytes long; the limit is ${limit} bytes (IMPORT_MAX_RECORD_BYTES). It was skipped.`));
    return;
  }
  batch.records.set(rec.row, rec.record);
  const res = handler.validate(rec.record, rec.row, rec.raw);
  if (!res.ok) {
    if (res.skipped) batch.skipped += 1;
    else batch.failed += 1;
    batch.errors.push(...res.errors);
    return;
  }
  if (!handler.dedupeByKey) {
    batch.staged.push(res.staged);
    return;
  }
  const earlier = seen.get(res.staged.key);
  if (earlier !== undefined) {
    // Within one file a later row for the same person wins; the earlier one is skipped and says why.
    const prev = batch.staged[earlier]!;
    batch.errors.push(duplicateError(prev.row, identifierHeader, prev.key, rec.row));
    batch.skipped += 1;
    batch.staged[earlier] = res.staged;
    seen.set(res.staged.key, earlier);
    return;
  }
  seen.set(res.staged.key, batch.staged.length);
  batch.staged.push(res.staged);
}

function duplicateError(row: number, column: string, key: string, laterRow: number | null): RowError {
  const later = laterRow === null ? "A later row" : `Row ${laterRow}`;
  return rowError(row, column, key, "duplicate_in_file", `${later} has the same identifier; the later row wins and this one was skipped.`);
}

/** Readies the reserved connection; returns its backend pid (to end it if a batch hangs). */
async function prepareConnection(conn: ReservedSql, handler: RowHandler): Promise<number> {
  // temp_buffers can only change before the session first touches a temp table (of any import kind).
  const [row] = await conn`select pg_my_temp_schema() <> 0 as t, pg_backend_pid() as pid`;
  if (!row?.t) await conn.unsafe(`set temp_buffers = '${TEMP_BUFFERS}'`).catch(() => {});
  // JIT compiles a batch statement for ~1 s (the LATERAL probes' cost estimates pass jit_above_cost) to run it in
  // 0.3 s: the batches are short, many and alike, so this session runs them interpreted. (Session-local: the pooled
  // connection goes back with jit off, which suits the service's other short statements too.)
  await conn.unsafe("set jit = off");
  await handler.ensureStage(conn);
  return Number(row?.pid);
}

/** One batch, one transaction, fenced: it commits only while this run still holds the newest fencing token. */
async function commitBatch(
  conn: ReservedSql,
  imp: ImportRow,
  ctx: BatchContext,
  handler: RowHandler,
  secrets: Secrets,
  batch: Batch,
  log: Logger,
): Promise<Record<Outcome, number>> {
  if (batch.staged.length && handler.prepare) await handler.prepare(conn, batch.staged);
  await conn.unsafe("begin");
  try {
    const [state] = await conn`select fence, cancel_requested, error_count from imports where id = ${imp.id} for update`;
    if (!state || Number(state.fence) !== imp.fence) throw new FenceLost();
    if (state.cancel_requested) {
      await conn`update imports set status = 'cancelled', finished_at = now(), updated_at = now() where id = ${imp.id}`;
      await conn.unsafe("commit");
      throw new CancelRequested();
    }
    const result: BatchResult = batch.staged.length ? await handler.writeBatch(conn, batch.staged) : { counts: emptyCounts(), errors: [], superseded: [] };
    const counts: Record<Outcome, number> = { ...result.counts };
    counts.failed += batch.failed;
    counts.skipped += batch.skipped;
    const errors = [...batch.errors, ...result.errors];
    for (const s of result.superseded) {
      counts[s.outcome] -= 1;
      counts.skipped += 1;
      errors.push(duplicateError(s.row, ctx.headerOf[ctx.identifier] ?? ctx.identifier, s.key, null));
    }
    if (imp.dryRun) {
      await conn.unsafe("rollback");
      await conn.unsafe("begin");
      const [again] = await conn`select fence from imports where id = ${imp.id} for update`;
      if (!again || Number(again.fence) !== imp.fence) throw new FenceLost();
    }
    await saveErrors(conn, imp.id, errors, batch.records, secrets, Number(state.error_count));
    await conn`
      update imports set
        created = created + ${counts.created}, updated = updated + ${counts.updated}, unchanged = unchanged + ${counts.unchanged},
        skipped = skipped + ${counts.skipped}, failed = failed + ${counts.failed},
        processed = processed + ${batch.rows}, total = processed + ${batch.rows},
        error_count = error_count + ${errors.length},
        checkpoint_row = checkpoint_row + ${batch.rows}, checkpoint_byte = ${batch.endByte}, checkpoint_line = ${batch.endLine},
        updated_at = now()
      where id = ${imp.id}`;
    await conn.unsafe("commit");
    log.debug({ importId: imp.id, rows: batch.rows, counts }, "batch committed");
    return counts;
  } catch (err) {
    // Nothing may be written to a dead connection: postgres.js would throw an uncaught TypeError on its null socket.
    if (!isConnectionLost(err)) await conn.unsafe("rollback").catch(() => {});
    throw err;
  }
}

/** Stores the first MAX_STORED_ERRORS errors of an import, each failed row with its cells (secret columns redacted). */
async function saveErrors(
  conn: ReservedSql,
  importId: string,
  errors: RowError[],
  records: Map<number, string[]>,
  secrets: Secrets,
  alreadyStored: number,
): Promise<void> {
  const room = Math.max(0, MAX_STORED_ERRORS - alreadyStored);
  const keep = errors.slice(0, room);
  if (keep.length === 0) return;
  const seqByRow = new Map<number, number>();
  const rows = keep.map((e) => {
    const seq = (seqByRow.get(e.row) ?? 0) + 1;
    seqByRow.set(e.row, seq);
    const { value, record } = redact(e, SKIP_CODES.has(e.code) ? undefined : records.get(e.row), secrets);
    return { ...e, value, seq, record: jsonSafe(record) };
  });
  await conn`
    insert into import_errors (import_id, row, seq, "column", value, code, message, record)
    select ${importId}::uuid, r.row, r.seq + coalesce((select max(seq) from import_errors x where x.import_id = ${importId}::uuid and x.row = r.row), 0),
           r.col, r.value, r.code, r.message, r.record
    from jsonb_to_recordset(${JSON.stringify(rows.map((r) => ({ row: r.row, seq: r.seq, col: r.column, value: r.value, code: r.code, message: r.message, record: r.record })))}::jsonb)
      as r(row bigint, seq int, col text, value text, code text, message text, record jsonb)`;
}

/** Columns whose cells never leave the worker in clear (passwords, tokens, keys): their index and header. */
export interface Secrets {
  indexes: ReadonlySet<number>;
  headers: ReadonlySet<string>;
}

function secretColumns(kind: ImportKind, headers: string[], mapping: Record<string, MappingTarget>): Secrets {
  const indexes = new Set(hiddenColumns(kind, headers, mapping));
  return { indexes, headers: new Set([...indexes].map((i) => headers[i]!)) };
}

/** The error as stored: a secret cell, and any raw line that may hold one (ragged rows), read "[redacted]". */
function redact(e: RowError, cells: string[] | undefined, secrets: Secrets): { value: string | null; record: string[] | undefined } {
  // A ragged row's cells do not line up with the headers, an oversized one has none: the raw line (the value) is what to fix.
  const raw = e.code === "ragged_row" || e.code === "record_too_large";
  if (secrets.indexes.size === 0) return { value: e.value, record: raw ? undefined : cells };
  const value = e.value !== null && (raw || (e.column !== null && secrets.headers.has(e.column))) ? REDACTED : e.value;
  if (!cells || raw) return { value, record: undefined };
  return { value, record: cells.map((c, i) => (secrets.indexes.has(i) && c !== "" ? REDACTED : c)) };
}

/** Longer than any cell that can be valid (100 labels of 255 characters; attributes 10,000): such cells are cut when stored. */
const MAX_STORED_CELL = 32 * 1024;

/**
 * JSONB cannot hold NUL: the stored cells show it as \0, as error values do. A cell longer than any valid value
 * (a 50 MB field) is cut, so one hostile row cannot put megabytes into the error report (it still fails when re-uploaded).
 */
function jsonSafe(cells: string[] | undefined): string[] | null {
  if (!cells) return null;
  return cells.map((c) => {
    const cut = c.length > MAX_STORED_CELL ? c.slice(0, MAX_STORED_CELL) : c;
    return cut.includes("\u0000") ? cut.replaceAll("\u0000", "\\0") : cut;
  });
}
