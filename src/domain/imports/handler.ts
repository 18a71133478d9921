import type { ReservedSql } from "postgres";
import type { ImportOptions } from "./mapping.js";
import type { RowError } from "./rows.js";
import type { Identifier } from "./targets.js";
import type { KeySketch } from "./key-sketch.js";

/**
 * What an import kind plugs into the shared pipeline (run.ts): how a CSV record becomes a staged row, and how a
 * batch of staged rows is written. Streaming, batching, checkpoints, fencing, dry runs, error storage, counts
 * and history stay in run.ts for every kind.
 */

export interface StagedRow {
  row: number;
  /** The identifier as rows are matched on it (an email as its emailKey(), src/domain/people/email.ts). */
  key: string;
  /**
   * False when no other row of the file has this key (key-sketch.ts): its batch neither probes nor writes the ledger
   * for it. Absent: it may repeat (no sketch was made).
   */
  repeat?: boolean;
}

/** A staged row as the kinds that stage cells one by one keep it (events, members): its staging columns' values. */
export interface ValuesRow extends StagedRow {
  values: (string | null)[];
}

/**
 * A batch's staged rows as its write sends them, made where the rows were parsed (on a parse thread, so only this
 * crosses to the run, and the run's thread only writes it): the COPY text of the staging table, and the distinct
 * label cells its rows refer to by number (the run turns each into label ids once).
 */
export interface EncodedRows {
  rows: number;
  /** UTF-8, in a buffer of its own: a parse thread hands it over without a copy (transferred), and COPY sends it as is. */
  copy: Uint8Array;
  labelCells: string[];
  /** The distinct `set_fields` of the batch's rows (what creating the person sets), which rows refer to by number. */
  setFields: string[];
  /** How many of its rows may share their key with another row of the file (StagedRow.repeat is not false). */
  mayRepeat: number;
}

export interface RowEncoder<R extends StagedRow = StagedRow> {
  /** Encodes the row; returns its line number in the batch (0-based, in the order added). */
  add(row: R): number;
  /** Leaves line `line` (an add's return) out of the batch, a later row for the same person having superseded it; returns its row. */
  drop(line: number): number;
  finish(): EncodedRows;
}

/** What a batch writer gets: the staged rows, or their encoding when the kind encodes (RowHandler.encoder). */
export interface StagedBatch<R extends StagedRow = StagedRow> {
  staged: R[];
  encoded?: EncodedRows;
}

/** `skipped` marks a row deliberately left out (blank) rather than failed. */
export type RowResult<R extends StagedRow = StagedRow> = { ok: true; staged: R } | { ok: false; skipped?: boolean; errors: RowError[] };

export type Outcome = "created" | "updated" | "unchanged" | "skipped" | "failed";

export interface BatchResult {
  counts: Record<Outcome, number>;
  errors: RowError[];
  /** Earlier rows (in committed batches) that a row of this batch superseded: they move to skipped. */
  superseded: { row: number; outcome: "created" | "updated" | "unchanged"; key: string }[];
  /** A dry run's batch is rolled back; this runs on the same connection just after, for what must outlive it. */
  afterRollback?: () => Promise<void>;
}

/** What a batch writer knows about the import it writes for. */
export interface BatchContext {
  workspaceId: string;
  importId: string;
  identifier: Identifier;
  options: ImportOptions;
  /** Header of the column mapped to each target, for error reports. */
  headerOf: Partial<Record<string, string>>;
  /** The static segment of everyone the import touched (createSegment), when asked for. */
  createdSegmentId: string | null;
  /** A dry run: the batch transaction is rolled back, so work whose only use is the write can be skipped. */
  dryRun: boolean;
}

export interface RowHandler<R extends StagedRow = StagedRow> {
  /** Creates the kind's temp staging table on the import's reserved connection (idempotent). */
  ensureStage(conn: ReservedSql): Promise<void>;
  /** One CSV record → a staged row, or the row's errors. Pure and synchronous: it runs for every row. */
  /** `plain`: ParsedRecord.plain (the record's cells need no escaping in COPY's text format). */
  validate(record: string[], row: number, raw: string, plain?: boolean): RowResult<R>;
  /**
   * Optional, for a kind that encodes: the row of a plain record (ParsedRecord.plain) read from its line of text
   * (`delimiter` a character code), exactly as `validate` would make it, when the line is simple enough to read so;
   * null otherwise (`validate` then reads the record). The row may refer to memory the next call reuses: it is encoded
   * before then.
   */
  line?(raw: string, row: number, delimiter: number): R | null;
  /**
   * True when rows describe a thing (a person, a member): a later row with the same key supersedes an earlier one.
   * False when every row stands alone (an event).
   */
  dedupeByKey: boolean;
  /** The largest batch this kind commits at once, when smaller than the configured batch size. */
  maxBatchSize?: number;
  /** Slow per-row work (password hashing) done before the batch transaction opens, so the transaction stays short. */
  prepare?(conn: ReservedSql, rows: R[]): Promise<void>;
  /**
   * Encodes a batch's staged rows for its write where they were parsed; without it the rows themselves travel. The
   * batch builder feeds it each row as the row is validated, and drops the line of a row a later row of the batch
   * supersedes: `expected` rows at most.
   */
  encoder?(expected: number): RowEncoder<R>;
  /**
   * For a kind that encodes and dedupes by key: marks the rows of an encoded batch that no other row of the file shares
   * a key with, by the file's now complete key sketch (a batch parsed before it was complete marked none).
   */
  markUnique?(encoded: EncodedRows, sketch: KeySketch): void;
  /** Writes a staged batch set-based, inside the caller's transaction. */
  writeBatch(conn: ReservedSql, batch: StagedBatch<R>): Promise<BatchResult>;
}

export function emptyCounts(): Record<Outcome, number> {
  return { created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 };
}

/** A batch writer's query runner over its reserved connection. */
export type StageQuery = (text: string, params?: unknown[]) => Promise<readonly Record<string, unknown>[]>;

/**
 * What every kind's staging table ends a batch with: the count per outcome and the row errors, in row order.
 * (Every stage table has `outcome` and `err_*` columns for this.)
 */
export async function readStageOutcome(q: StageQuery, table: string): Promise<{ counts: Record<Outcome, number>; errors: RowError[] }> {
  const counts = emptyCounts();
  for (const r of await q(`select outcome, count(*)::int as n from ${table} group by outcome`)) counts[r.outcome as Outcome] = r.n as number;
  const errs = await q(`select row, err_column, err_value, err_code, err_message from ${table} where err_code is not null order by row`);
  const errors = errs.map((e) => ({
    row: Number(e.row),
    column: e.err_column as string | null,
    value: e.err_value as string | null,
    code: e.err_code as string,
    message: e.err_message as string,
  }));
  return { counts, errors };
}
