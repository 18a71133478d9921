/**
 * A batch as the run loop assembles it from parsed records: rows validated by the kind's handler, staged for the
 * write, or failed/skipped with their errors; within the batch a later row for the same person supersedes an earlier one.
 */
import type { Storage } from "../../storage/storage.js";
import type { BatchContext, EncodedRows, RowEncoder, RowHandler, StagedRow } from "./handler.js";
import { createRowHandler } from "./handlers.js";
import { mayRepeat, sketchComplete, type KeySketch } from "./key-sketch.js";
import { partOfRecord, type PartOf } from "./parts.js";
import { readRecordBlocks, readRecords, type ParsedRecord, type ReadFrom } from "./reader.js";
import { rowError, type RowError } from "./rows.js";
import { dropBlankTail } from "./sniff.js";
import type { ImportKind, MappingTarget } from "./targets.js";

/** A batch also ends at this many bytes of CSV, so very wide or very long rows cannot swell a batch's memory. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export interface Batch {
  staged: StagedRow[];
  /** The staged rows encoded for the write (RowHandler.encoder), when the kind encodes: then `staged` is empty. */
  encoded?: EncodedRows;
  /**
   * While the batch is built, when the kind encodes: its rows, encoded as they are validated (none is held in
   * `staged`). Gone once the batch is complete (`encoded`).
   */
  encoder?: RowEncoder;
  /** Rows of this batch that failed validation or were superseded inside the batch. */
  errors: RowError[];
  failed: number;
  skipped: number;
  /** Records read (the checkpoint moves past them all). */
  rows: number;
  /** Records this run answers for: all of them, or the rows of its part when the import is split (parts.ts). */
  own: number;
  /** Where the batch starts in the stored file: byte offset, data rows and physical lines before it. */
  startByte: number;
  startRow: number;
  startLine: number;
  endByte: number;
  endLine: number;
  /**
   * The cells of the rows that failed validation, so their error line can repeat the row for fixing and re-upload.
   * Rows failed later by the database are read again from the file (run.ts): keeping every row's cells would double
   * what a batch holds, and what crosses from a parse thread, for the few rows that fail there.
   */
  records: Map<number, string[]>;
  /**
   * Its rows were marked by the file's complete key sketch (BatchPlan.repeats) as they were read. A batch begun before
   * the sketch was complete marks none; its run marks them before writing it if the sketch is complete by then.
   */
  sketched?: boolean;
}

export function newBatch(from: ReadFrom): Batch {
  return { staged: [], errors: [], failed: 0, skipped: 0, rows: 0, own: 0, startByte: from.byte, startRow: from.row, startLine: from.line, endByte: from.byte, endLine: from.line, records: new Map() };
}

export function addRecord(
  batch: Batch,
  seen: Map<string, number>,
  rec: ParsedRecord,
  handler: RowHandler,
  identifierHeader: string,
  sketch?: KeySketch,
  batchSize = 0,
  /** The file's delimiter as a character code, for the handler's plain-line path (RowHandler.line); -1: none. */
  delimiter = -1,
): void {
  batch.rows += 1;
  batch.own += 1;
  batch.endByte = rec.endByte;
  batch.endLine = rec.endLine;
  if (rec.tooLarge) {
    // Nothing of the record was read but its first bytes: no cells to repeat, the start of the line is the value.
    const { sizeBytes, startLine, limit } = rec.tooLarge;
    batch.failed += 1;
    batch.errors.push(rowError(rec.row, null, rec.raw, "record_too_large", `The record starting on line ${startLine} is ${sizeBytes} bytes long; the limit is ${limit} bytes (IMPORT_MAX_RECORD_BYTES). It was skipped.`));
    return;
  }
  // A plain line the handler reads without its cells (its row is encoded below, before the handler's next call).
  let staged = rec.plain === true && delimiter >= 0 && handler.line && handler.encoder ? handler.line(rec.raw, rec.row, delimiter) : null;
  if (staged === null) {
    const res = handler.validate(rec.record, rec.row, rec.raw, rec.plain);
    if (!res.ok) {
      if (res.skipped) batch.skipped += 1;
      else {
        batch.failed += 1;
        batch.records.set(rec.row, rec.record);
      }
      batch.errors.push(...res.errors);
      return;
    }
    staged = res.staged;
  }
  if (!handler.dedupeByKey) {
    // Rows that never supersede each other: encoded now when the kind encodes (see below), else held.
    if (handler.encoder) (batch.encoder ??= handler.encoder(batchSize)).add(staged);
    else batch.staged.push(staged);
    return;
  }
  if (sketch) staged.repeat = mayRepeat(sketch, staged.key);
  if (handler.encoder) {
    // Encoded now, not held to the batch's end: 10,000 held rows outlived the young generation, and V8 then allocated
    // every later row of the run straight into the old one (allocation-site pretenuring), a collection every few
    // batches (BENCHMARKS.md, "Imports, 2026-12-01 (twelfth session)"). A later row for the same key drops this
    // one's line.
    const encoder = (batch.encoder ??= handler.encoder(batchSize));
    // No other row of the file has this key: nothing can supersede the row.
    if (staged.repeat === false) {
      encoder.add(staged);
      return;
    }
    const earlier = seen.get(staged.key);
    if (earlier !== undefined) {
      // Within one file a later row for the same person wins; the earlier one is skipped and says why.
      batch.errors.push(duplicateError(encoder.drop(earlier), identifierHeader, staged.key, rec.row));
      batch.skipped += 1;
    }
    seen.set(staged.key, encoder.add(staged));
    return;
  }
  const earlier = seen.get(staged.key);
  if (earlier !== undefined) {
    // Within one file a later row for the same person wins; the earlier one is skipped and says why.
    const prev = batch.staged[earlier]!;
    batch.errors.push(duplicateError(prev.row, identifierHeader, prev.key, rec.row));
    batch.skipped += 1;
    batch.staged[earlier] = staged;
    seen.set(staged.key, earlier);
    return;
  }
  seen.set(staged.key, batch.staged.length);
  batch.staged.push(staged);
}

export function duplicateError(row: number, column: string, key: string, laterRow: number | null): RowError {
  const later = laterRow === null ? "A later row" : `Row ${laterRow}`;
  return rowError(row, column, key, "duplicate_in_file", `${later} has the same identifier; the later row wins and this one was skipped.`);
}

/** What producing an import's batches needs: all of it plain data, so a parse thread can receive it. */
export interface BatchPlan {
  kind: ImportKind;
  ctx: BatchContext;
  headers: string[];
  mapping: Record<string, MappingTarget>;
  storageKey: string;
  delimiter: string;
  /** Where to start: the import's last checkpoint. */
  from: ReadFrom;
  maxRecordBytes?: number;
  batchSize: number;
  /** Cells of the header row, trailing unnamed ones included (readHeaderWidth). */
  fileWidth: number;
  /** The part of a split import this run writes (parts.ts): other parts' records are read past, not validated. */
  part?: PartOf;
  /**
   * The file's identifier keys (key-sketch.ts), for a kind that dedupes by key: rows it shows unique are marked so, in
   * the batches begun once it is complete (it may still be being read when the first batches begin).
   */
  repeats?: KeySketch;
}

/** A batch to commit; `last` when the file ends with it (its run need not yield after it). */
export interface PlannedBatch {
  batch: Batch;
  last: boolean;
}

/**
 * Streams the import file from its checkpoint, validates each record with the kind's handler and groups the rows
 * into batches of `batchSize` rows (or MAX_BATCH_BYTES of CSV); within a batch a later row for the same person
 * supersedes an earlier one. Pure but for reading the file: it runs on the run's thread or on a parse thread.
 */
export async function* produceBatches(storage: Storage, plan: BatchPlan): AsyncGenerator<PlannedBatch> {
  const handler = createRowHandler(plan.kind, plan.ctx, plan.headers, plan.mapping);
  const identifierHeader = plan.ctx.headerOf[plan.ctx.identifier] ?? plan.ctx.identifier;
  const named = plan.headers.length;
  let batch = newBatch(plan.from);
  const seen = new Map<string, number>();
  const part = plan.part;
  const identifierIndex = handler.dedupeByKey ? plan.headers.indexOf(identifierHeader) : -1;
  const delimiter = plan.delimiter.length === 1 ? plan.delimiter.charCodeAt(0) : -1;
  const completeSketch = () => (plan.repeats && sketchComplete(plan.repeats) ? plan.repeats : undefined);
  let repeats = completeSketch();
  for await (const block of readRecordBlocks(storage, plan.storageKey, plan.delimiter, plan.from, plan.maxRecordBytes)) for (const rec of block) {
    // Trailing unnamed header cells (`Email;Name;;`) are not in headers: blank cells under them are dropped per row.
    if (plan.fileWidth > named) rec.record = dropBlankTail(rec.record, named, plan.fileWidth);
    if (part && partOfRecord(rec.tooLarge ? undefined : rec.record, rec.row, identifierIndex, plan.ctx.identifier, part.count) !== part.index) {
      batch.rows += 1;
      batch.endByte = rec.endByte;
      batch.endLine = rec.endLine;
    } else addRecord(batch, seen, rec, handler, identifierHeader, repeats, plan.batchSize, delimiter);
    if (batch.own >= plan.batchSize || batch.endByte - batch.startByte >= MAX_BATCH_BYTES) {
      if (repeats) batch.sketched = true;
      yield { batch: encode(batch, handler), last: false };
      batch = newBatch({ byte: batch.endByte, row: batch.startRow + batch.rows, line: batch.endLine });
      seen.clear();
      repeats ??= completeSketch();
    }
  }
  if (batch.rows > 0) {
    if (repeats) batch.sketched = true;
    yield { batch: encode(batch, handler), last: true };
  }
}

function encode(batch: Batch, handler: RowHandler): Batch {
  if (!handler.encoder || (batch.staged.length === 0 && !batch.encoder)) return batch;
  const encoder = batch.encoder ?? handler.encoder(batch.staged.length);
  for (const r of batch.staged) encoder.add(r);
  batch.encoded = encoder.finish();
  batch.staged = [];
  delete batch.encoder;
  return batch;
}

/**
 * Reads the cells of `rows` of a batch again from the file (the rows the database failed: see Batch.records) into
 * batch.records, as produceBatches read them.
 */
export async function readBatchRecords(storage: Storage, plan: BatchPlan, batch: Batch, rows: ReadonlySet<number>): Promise<void> {
  const named = plan.headers.length;
  const from = { byte: batch.startByte, row: batch.startRow, line: batch.startLine };
  for await (const rec of readRecords(storage, plan.storageKey, plan.delimiter, from, plan.maxRecordBytes, batch.endByte)) {
    if (rows.has(rec.row) && !rec.tooLarge) batch.records.set(rec.row, plan.fileWidth > named ? dropBlankTail(rec.record, named, plan.fileWidth) : rec.record);
  }
}
