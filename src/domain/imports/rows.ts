import { MAX_VALUE_LENGTH } from "../attributes.js";

/** What every row handler shares: the error shape, limits, and cell checks that apply to every kind. */

export interface RowError {
  row: number;
  column: string | null;
  value: string | null;
  code: string;
  message: string;
}

/** Longest text kept in one native field or attribute; longer cells are row errors, not silently cut. */
export const MAX_FIELD_LENGTH = 1_000;
/** The cap identify and the events API apply too (domain/attributes.ts). */
export const MAX_ATTRIBUTE_LENGTH = MAX_VALUE_LENGTH;
/** How much of an offending value an error report repeats: enough to find it, not the whole 50 MB. */
const MAX_REPORTED_VALUE = 200;
export const MAX_LABELS_PER_ROW = 100;
export const MAX_LABEL_LENGTH = 255;

export function reportValue(v: string | null): string | null {
  if (v === null) return null;
  return v.length > MAX_REPORTED_VALUE ? `${v.slice(0, MAX_REPORTED_VALUE)}…` : v;
}

/** Codes of rows deliberately left out (nothing in them to fix): the error CSV repeats no cells for them. */
export const SKIP_CODES: ReadonlySet<string> = new Set(["duplicate_in_file", "already_exists", "not_found", "empty_row"]);

/**
 * A row whose every mapped cell is blank (spreadsheets leave trailing rows of bare delimiters; a re-uploaded error
 * report has lines with only the report's own columns filled): skipped, not failed.
 */
export function isBlankRecord(record: string[], mappedIndexes: readonly number[]): boolean {
  return mappedIndexes.every((i) => (record[i] ?? "").trim() === "");
}

export function emptyRowError(row: number): RowError {
  return rowError(row, null, null, "empty_row", "Every cell of the row is empty; it was skipped.");
}

export function rowError(row: number, column: string | null, value: string | null, code: string, message: string): RowError {
  return { row, column, value: reportValue(value), code, message };
}

/** A record whose field count differs from the header's; the raw line is kept so nothing vanishes unexplained. */
export function raggedError(row: number, fields: number, expected: number, raw: string): RowError {
  return rowError(
    row,
    null,
    raw.replace(/\r?\n$|\r$/, ""),
    "ragged_row",
    `The row has ${fields} field${fields === 1 ? "" : "s"} but the header has ${expected}.`,
  );
}

/** Checks common to every cell: NUL bytes (Postgres text cannot hold them) and length. */
export function cellProblem(row: number, column: string, value: string, maxLength: number): RowError | null {
  if (value.includes("\u0000")) return rowError(row, column, value.replaceAll("\u0000", "\\0"), "nul_byte", "The value contains a NUL byte.");
  if (value.length > maxLength) {
    return rowError(row, column, value, "too_long", `The value is ${value.length} characters long; the limit is ${maxLength}.`);
  }
  return null;
}

/** Splits a ':'-separated list, trimming items and dropping empty ones. */
export function splitList(raw: string): string[] {
  return raw
    .split(":")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Mailchimp's TAGS cell: every name in double quotes, comma-separated (`"Newsletter", "VIP"`). */
const QUOTED_LIST = /^"[^"]*"(?:\s*,\s*"[^"]*")*$/;

/**
 * A labels cell: a ':'-separated list, or Mailchimp's quoted comma list (a plain ':' list never starts and ends
 * with a quote, so the two cannot be confused). Names still cannot hold ':', so each quoted name is split on it too.
 */
export function splitLabels(raw: string): string[] {
  const t = raw.trim();
  if (!QUOTED_LIST.test(t)) return splitList(t);
  return [...t.matchAll(/"([^"]*)"/g)].flatMap((m) => splitList(m[1]!));
}
