import { parse } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import { restoreCell } from "../../lib/spreadsheet-safe.js";
import type { Storage } from "../../storage/storage.js";

/** A record bigger than this is an error, not a reason to run out of memory (a 50 MB cell still passes). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface ParsedRecord {
  record: string[];
  /** 1-based data row number (the header is row 0). */
  row: number;
  /** Byte offset in the stored file just after this record: where a resume starts. */
  endByte: number;
  /** Physical line (1-based, header included) where this record ends. */
  endLine: number;
  raw: string;
}

export class CsvStructureError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

export interface ReadFrom {
  /** Byte offset of the first record to read (just after the header, or a checkpoint). */
  byte: number;
  /** Data rows before that offset. */
  row: number;
  /** Physical lines before that offset. */
  line: number;
}

/**
 * Streams the records of a stored import file (always UTF-8 without BOM: intake transcodes) from a resume point.
 * The parser never drops a row: ragged rows come through for the caller to report, and a structural error
 * (an unterminated quote) ends the stream with a CsvStructureError naming the line.
 * Cells are un-neutralised (restoreCell): the apostrophe a Roster export put before a formula character is removed,
 * so an exported CSV imports back unchanged.
 */
export async function* readRecords(storage: Storage, key: string, delimiter: string, from: ReadFrom): AsyncGenerator<ParsedRecord> {
  const size = await storage.size(key);
  if (from.byte >= size) return;
  const source = await storage.read(key, { start: from.byte });
  const parser = parse({
    delimiter,
    record_delimiter: ["\r\n", "\n", "\r"],
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: true,
    info: true,
    raw: true,
    bom: false,
    max_record_size: MAX_RECORD_BYTES,
  });
  source.on("error", (err) => parser.destroy(err));
  source.pipe(parser);
  let row = from.row;
  let lastLine = from.line;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { bytes: number; lines: number }; raw: string }>) {
      row += 1;
      lastLine = from.line + item.info.lines;
      yield { record: item.record.map(restoreCell), row, endByte: from.byte + item.info.bytes, endLine: from.line + item.info.lines, raw: item.raw };
    }
  } catch (err) {
    const e = err as { code?: string; lines?: number; message: string };
    if (typeof e.code === "string" && e.code.startsWith("CSV_")) {
      // The failing record starts on the line after the last good one.
      const line = lastLine + 1;
      const reason =
        e.code === "CSV_QUOTE_NOT_CLOSED"
          ? `A quoted field is never closed: the record starting at line ${line} (data row ${row + 1}) has an opening quote with no closing quote before the end of the file.`
          : e.code === "CSV_MAX_RECORD_SIZE"
            ? `The record at line ${line} is larger than ${MAX_RECORD_BYTES} bytes.`
            : `The CSV is malformed at line ${line}: ${e.message}`;
      throw new CsvStructureError(reason, line);
    }
    throw err;
  } finally {
    source.destroy();
  }
}

/**
 * How many cells the header row of the stored file has, trailing unnamed ones included (intake keeps only the
 * named ones in `headers`): rows may carry blank cells under those (see dropBlankTail).
 */
export async function readHeaderWidth(storage: Storage, key: string, delimiter: string, headerBytes: number): Promise<number> {
  if (headerBytes === 0) return 0;
  const chunks: Buffer[] = [];
  for await (const c of await storage.read(key, { start: 0, end: headerBytes - 1 })) chunks.push(c as Buffer);
  const [header] = parseSync(Buffer.concat(chunks), { delimiter, record_delimiter: ["\r\n", "\n", "\r"], relax_quotes: true, skip_empty_lines: true, to: 1, bom: true }) as string[][];
  return header?.length ?? 0;
}
