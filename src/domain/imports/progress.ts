import type { imports, ImportStatus } from "../../db/schema.js";

type ImportRow = typeof imports.$inferSelect;

/** Statuses in which a run is under way: the figures move and an ETA is given. */
const RUNNING: ReadonlySet<ImportStatus> = new Set(["processing", "validating"]);
/** Statuses of a run that went through the whole file. */
const COMPLETE: ReadonlySet<ImportStatus> = new Set(["done", "validated"]);

export interface ImportProgress {
  /** Bytes of the stored file up to the last committed batch (the header included). */
  bytesProcessed: number;
  bytesTotal: number;
  /** 0–100, one decimal; 100 once the run went through the whole file. */
  percent: number;
  /** Rows processed per second since the run started (until it finished, once it has). */
  rowsPerSecond: number;
  /** Seconds left at the byte rate so far; null when not running or before the first batch. */
  etaSeconds: number | null;
}

/**
 * Where the latest run of an import stands, from its checkpoint (committed batches only). Null before a run has
 * started (draft, queued); a finished, failed or cancelled run keeps its last figures.
 */
export function importProgress(row: ImportRow, now: Date = new Date()): ImportProgress | null {
  if (row.status === "draft" || row.status === "queued" || !row.startedAt) return null;
  const bytesTotal = row.storedBytes ?? row.sizeBytes;
  const complete = COMPLETE.has(row.status);
  const bytesProcessed = complete ? bytesTotal : Math.min(Math.max(row.checkpointByte, 0), bytesTotal);
  const end = RUNNING.has(row.status) ? now : (row.finishedAt ?? now);
  const seconds = Math.max(0, (end.getTime() - row.startedAt.getTime()) / 1000);
  const rowsPerSecond = seconds > 0 ? round1(row.processed / seconds) : 0;
  let etaSeconds: number | null = complete ? 0 : null;
  const read = bytesProcessed - row.dataOffset;
  if (RUNNING.has(row.status) && read > 0 && seconds > 0) etaSeconds = Math.ceil((bytesTotal - bytesProcessed) / (read / seconds));
  const percent = bytesTotal > 0 ? Math.floor((bytesProcessed / bytesTotal) * 1000) / 10 : 100;
  return { bytesProcessed, bytesTotal, percent, rowsPerSecond, etaSeconds };
}

const round1 = (n: number) => Math.round(n * 10) / 10;
