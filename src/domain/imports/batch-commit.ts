/**
 * Writing one batch: the reserved connection's set-up, then one transaction per batch that checks the fence and a
 * cancel request, writes through the kind's handler (or rolls back for a dry run), stores the errors and moves the
 * checkpoint. Also what a lost connection or a stuck batch looks like to the run loop.
 */
import type { ReservedSql } from "postgres";
import { isConnectionLostCode } from "../../db/connection-errors.js";
import type { imports } from "../../db/schema.js";
import type { Logger } from "../../lib/logger.js";
import { withTimeout } from "../../lib/timeout.js";
import { duplicateError, type Batch } from "./batch-builder.js";
import { MAX_STORED_ERRORS, saveErrors, type Secrets } from "./error-store.js";
import { SKIP_CODES } from "./rows.js";
import { emptyCounts, type BatchContext, type BatchResult, type Outcome, type RowHandler } from "./handler.js";

/** Temp tables live in temp_buffers; the 8 MB default spills a 10k-row batch to disk. */
const TEMP_BUFFERS = "128MB";

type ImportRow = typeof imports.$inferSelect;

/** Another run took the import (a newer fencing token): this one must write nothing more. */
export class FenceLost extends Error {}
/** The import was cancelled: it said so in the batch's transaction, which committed. */
export class CancelRequested extends Error {}
/** A part's import ended while the part ran (another part saw a cancel, or the import failed): the part stops. */
export class ImportEnded extends Error {}

export class BatchTimeoutError extends Error {
  override name = "BatchTimeoutError";
}

/** Rejects with BatchTimeoutError when `p` has not settled within `ms` (after running `onTimeout`). */
export function bounded<T>(p: Promise<T>, ms: number, onTimeout?: () => Promise<void>): Promise<T> {
  return withTimeout(p, ms, async () => {
    await onTimeout?.();
    return new BatchTimeoutError(`The batch did not finish within ${ms} ms.`);
  });
}

/** The reserved connection is gone (terminated, network lost, or ended by us after a batch timeout). */
export function isConnectionLost(err: unknown): boolean {
  return err instanceof BatchTimeoutError || isConnectionLostCode((err as { code?: unknown } | null)?.code);
}

/** Readies the reserved connection; returns its backend pid (to end it if a batch hangs). */
export async function prepareConnection(conn: ReservedSql, handler: RowHandler): Promise<number> {
  // temp_buffers can only change before the session first touches a temp table (of any import kind).
  const [row] = await conn`select pg_my_temp_schema() <> 0 as t, pg_backend_pid() as pid`;
  if (!row?.t) await conn.unsafe(`set temp_buffers = '${TEMP_BUFFERS}'`).catch(() => {});
  // JIT compiles a batch statement for ~1 s (the LATERAL probes' cost estimates pass jit_above_cost) to run it in
  // 0.3 s: the batches are short, many and alike, so this session runs them interpreted. (Session-local: the pooled
  // connection goes back with jit off, which suits the service's other short statements too.)
  await conn.unsafe("set jit = off");
  // A batch's LATERAL probes (the ledger's, in contacts/batch.ts) each look up a different person: Memoize caches
  // every lookup for nothing (10,000 misses a batch, ~1 µs each). Session-local too, as jit.
  await conn.unsafe("set enable_memoize = off");
  await handler.ensureStage(conn);
  return Number(row?.pid);
}

/** One batch, one transaction, fenced: it commits only while this run still holds the newest fencing token. */
export interface BatchCommit {
  /** The run's reserved connection (its staging tables live there). */
  conn: ReservedSql;
  /** The import as this run claimed it: its id and fencing token. */
  imp: ImportRow;
  ctx: BatchContext;
  handler: RowHandler;
  secrets: Secrets;
  batch: Batch;
  log: Logger;
  /** Reads the cells of these rows of the batch again from the file (rows the database failed; see Batch.records). */
  readRecords: (batch: Batch, rows: ReadonlySet<number>) => Promise<void>;
  /** A part of a split import (parts.ts): fenced and checkpointed by its part row; never a dry run. */
  part?: { index: number; fence: number };
}

export async function commitBatch({ conn, imp, ctx, handler, secrets, batch, log, readRecords, part }: BatchCommit): Promise<Record<Outcome, number>> {
  if (batch.staged.length && handler.prepare) await handler.prepare(conn, batch.staged);
  await conn.unsafe("begin");
  try {
    // A part locks its own row (locking the import's would serialise the parts) and reads the import's as committed.
    const [state] = part
      ? await conn`
          select p.fence, i.cancel_requested, i.error_count, i.status from import_parts p join imports i on i.id = p.import_id
          where p.import_id = ${imp.id} and p.part = ${part.index} for update of p`
      : await conn`select fence, cancel_requested, error_count, status from imports where id = ${imp.id} for update`;
    if (!state || Number(state.fence) !== (part ? part.fence : imp.fence)) throw new FenceLost();
    if (part && state.status !== "processing") throw new ImportEnded();
    if (state.cancel_requested) {
      const ended = await conn`update imports set status = 'cancelled', finished_at = now(), updated_at = now() where id = ${imp.id} and status in ('validating', 'processing') returning id`;
      await conn.unsafe("commit");
      throw ended.length ? new CancelRequested() : new ImportEnded();
    }
    const staged = batch.encoded?.rows ?? batch.staged.length;
    const result: BatchResult = staged > 0 ? await handler.writeBatch(conn, batch) : { counts: emptyCounts(), errors: [], superseded: [] };
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
      await result.afterRollback?.();
      await conn.unsafe("begin");
      const [again] = await conn`select fence from imports where id = ${imp.id} for update`;
      if (!again || Number(again.fence) !== imp.fence) throw new FenceLost();
    }
    // The error report repeats a failed row's cells: those the database failed are read again from the file.
    const room = MAX_STORED_ERRORS - Number(state.error_count);
    const unread = new Set(errors.slice(0, Math.max(0, room)).filter((e) => !SKIP_CODES.has(e.code) && !batch.records.has(e.row)).map((e) => e.row));
    if (unread.size) await readRecords(batch, unread);
    await saveErrors(conn, imp.id, errors, batch.records, secrets, Number(state.error_count));
    if (part) {
      // The import's row last, and only for an instant: it adds this part's counts, and its checkpoint row counts the
      // rows the parts answered for (a start after a failure resumes the parts); its byte offset (progress) is the
      // parts' mean, since every part reads the whole file.
      await conn`
        update import_parts set
          checkpoint_row = checkpoint_row + ${batch.rows}, checkpoint_byte = ${batch.endByte}, checkpoint_line = ${batch.endLine},
          created = created + ${counts.created}, updated_at = now()
        where import_id = ${imp.id} and part = ${part.index}`;
      // Only while the import still runs: another part may have cancelled or failed it since this batch began (its
      // update waits here for that commit, then finds the status changed): then nothing of this batch is kept.
      const running = await conn`
        update imports set
          created = created + ${counts.created}, updated = updated + ${counts.updated}, unchanged = unchanged + ${counts.unchanged},
          skipped = skipped + ${counts.skipped}, failed = failed + ${counts.failed},
          processed = processed + ${batch.own}, total = processed + ${batch.own}, checkpoint_row = checkpoint_row + ${batch.own},
          error_count = error_count + ${errors.length},
          checkpoint_byte = (select avg(checkpoint_byte)::bigint from import_parts where import_id = ${imp.id}),
          updated_at = now()
        where id = ${imp.id} and status = 'processing'
        returning id`;
      if (!running.length) throw new ImportEnded();
      await conn.unsafe("commit");
      return counts;
    }
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
