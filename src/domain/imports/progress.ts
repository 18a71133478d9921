import type { imports } from "../../db/schema.js";
import { isIn } from "../runs.js";
import { IMPORT_RUNNING } from "./lifecycle.js";

type ImportRow = typeof imports.$inferSelect;

/** Statuses of a run that went through the whole file. */
const IMPORT_COMPLETE = ["done", "validated"] as const;

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
  const complete = isIn(IMPORT_COMPLETE, row.status);
  const running = isIn(IMPORT_RUNNING, row.status);
  const bytesProcessed = complete ? bytesTotal : Math.min(Math.max(row.checkpointByte, 0), bytesTotal);
  const end = running ? now : (row.finishedAt ?? now);
  const seconds = Math.max(0, (end.getTime() - row.startedAt.getTime()) / 1000);
  const rowsPerSecond = seconds > 0 ? round1(row.processed / seconds) : 0;
  let etaSeconds: number | null = complete ? 0 : null;
  const read = bytesProcessed - row.dataOffset;
  if (running && read > 0 && seconds > 0) etaSeconds = Math.ceil((bytesTotal - bytesProcessed) / (read / seconds));
  const percent = bytesTotal > 0 ? Math.floor((bytesProcessed / bytesTotal) * 1000) / 10 : 100;
  return { bytesProcessed, bytesTotal, percent, rowsPerSecond, etaSeconds };
}

const round1 = (n: number) => Math.round(n * 10) / 10;
