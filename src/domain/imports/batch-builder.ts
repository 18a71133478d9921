/**
 * A batch as the run loop assembles it from parsed records: rows validated by the kind's handler, staged for the
 * write, or failed/skipped with their errors; within the batch a later row for the same person supersedes an earlier one.
 */
import type { RowHandler, StagedRow } from "./handler.js";
import type { ParsedRecord } from "./reader.js";
import { rowError, type RowError } from "./rows.js";

/** A batch also ends at this many bytes of CSV, so very wide or very long rows cannot swell a batch's memory. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

export interface Batch {
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

export function newBatch(startByte: number): Batch {
  return { staged: [], errors: [], failed: 0, skipped: 0, rows: 0, startByte, endByte: startByte, endLine: 0, records: new Map() };
}

export function addRecord(
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

export function duplicateError(row: number, column: string, key: string, laterRow: number | null): RowError {
  const later = laterRow === null ? "A later row" : `Row ${laterRow}`;
  return rowError(row, column, key, "duplicate_in_file", `${later} has the same identifier; the later row wins and this one was skipped.`);
}
