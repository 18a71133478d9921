/**
 * The import's stored errors: the first MAX_STORED_ERRORS of them, each failed row with its cells so the error report
 * can repeat it for fixing and re-upload, and secret columns (passwords, tokens, keys) never stored in clear.
 */
import type { ReservedSql } from "postgres";
import type { ImportKind } from "./mapping.js";
import { REDACTED, hiddenColumns } from "./members/redact.js";
import { SKIP_CODES, type RowError } from "./rows.js";
import type { MappingTarget } from "./targets.js";

/** Errors kept per import (all are counted): enough to fix a file, bounded so a garbage file cannot fill the disk. */
export const MAX_STORED_ERRORS = 10_000;

/** Stores the first MAX_STORED_ERRORS errors of an import, each failed row with its cells (secret columns redacted). */
export async function saveErrors(
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

export function secretColumns(kind: ImportKind, headers: string[], mapping: Record<string, MappingTarget>): Secrets {
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
