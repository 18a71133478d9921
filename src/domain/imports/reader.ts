import { parse } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import { restoreCell } from "../../lib/spreadsheet-safe.js";
import type { Storage } from "../../storage/storage.js";
import { scanRecords } from "./record-scan.js";
import { OversizedRecordFinder, UnclosedQuote, type OversizedRecord } from "./record-skip.js";

/**
 * Default bound on one record (IMPORT_MAX_RECORD_BYTES, whose default it matches): the parser holds a record whole, so
 * this bounds its memory. A record past it is a row error (record_too_large), skipped without being held.
 */
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

/**
 * The byte scan leaves records longer than this to csv-parse (which holds a record whole anyway), so the scan itself
 * never holds more than about twice this of a record.
 */
const SCAN_MAX_RECORD_BYTES = 1024 * 1024;
/**
 * After the scan stops at a record, csv-parse reads it and up to this many records in all before the scan takes over
 * again: a file whose every record needs csv-parse opens a parser per this many records, not per record.
 */
const PARSER_RECORDS = 1000;

export interface ParsedRecord {
  record: string[];
  /** 1-based data row number (the header is row 0). */
  row: number;
  /** Byte offset in the stored file just after this record: where a resume starts. */
  endByte: number;
  /** Physical line (1-based, header included) where this record ends. */
  endLine: number;
  raw: string;
  /**
   * True when no cell of the record holds a backslash, a tab, a CR or an LF (record-scan.ts sets it for the lines it
   * reads whole): its cells, and what validation derives from them, go into COPY's text format as they are (copyValue
   * has nothing to escape). Absent: not known, every value is escaped.
   */
  plain?: boolean;
  /** Set when the record was over the size limit: it was skipped unread, `record` is empty and `raw` its first bytes. */
  tooLarge?: { sizeBytes: number; startLine: number; limit: number };
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
 * The parser never drops a row: ragged rows come through for the caller to report, a record over `maxRecordBytes`
 * comes through as `tooLarge` (the parser resumes after it), and a structural error (an unterminated quote) ends the
 * stream with a CsvStructureError naming the line.
 * Cells are un-neutralised (restoreCell): the apostrophe a Roster export put before a formula character is removed,
 * so an exported CSV imports back unchanged.
 */
export async function* readRecords(...args: Parameters<typeof readRecordBlocks>): AsyncGenerator<ParsedRecord> {
  for await (const block of readRecordBlocks(...args)) yield* block;
}

/**
 * readRecords in blocks of records, in file order (a block of one where csv-parse reads): what the batch builder
 * reads, which spares each record a step of two async generators.
 */
export async function* readRecordBlocks(
  storage: Storage,
  key: string,
  delimiter: string,
  from: ReadFrom,
  maxRecordBytes = DEFAULT_MAX_RECORD_BYTES,
  /** Stop at this byte offset (a record boundary: the end of a batch read again); the end of the file when absent. */
  to?: number,
): AsyncGenerator<ParsedRecord[]> {
  const size = Math.min(await storage.size(key), to ?? Infinity);
  const scans = delimiter.length === 1;
  let at = from;
  while (at.byte < size) {
    // Plain records are read by a byte scan (record-scan.ts); csv-parse reads the record it stops at and a few more.
    if (scans) {
      const source = await storage.read(key, { start: at.byte, ...(to === undefined ? {} : { end: to - 1 }) });
      const scan = scanRecords(source as AsyncIterable<Buffer>, delimiter, at, Math.min(maxRecordBytes, SCAN_MAX_RECORD_BYTES), restoreCell);
      try {
        for (;;) {
          const step = await scan.next();
          if (step.done) {
            if (!step.value) return;
            at = step.value.at;
            break;
          }
          const last = step.value[step.value.length - 1]!;
          at = { byte: last.endByte, row: last.row, line: last.endLine };
          yield step.value;
        }
      } finally {
        await scan.return(null);
        (source as { destroy?: () => void }).destroy?.();
      }
    }
    const until = scans ? at.row + PARSER_RECORDS : Infinity;
    while (at.byte < size && at.row < until) {
      try {
        for await (const rec of parseFrom(storage, key, delimiter, at, maxRecordBytes, to)) {
          at = { byte: rec.endByte, row: rec.row, line: rec.endLine };
          yield [rec];
          if (at.row >= until) break;
        }
        if (at.row >= until) break;
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== "CSV_MAX_RECORD_SIZE") throw structureError(err, at);
      }
      // A record after `at` is too large. Records the parser had read past `at` but not yet handed over are lost with
      // it, so the walk starts at `at`: it finds the record without holding it, and what lies before it is parsed again.
      const big = await findOversized(storage, key, delimiter, at, maxRecordBytes);
      if (big.startByte > at.byte) {
        for await (const rec of parseFrom(storage, key, delimiter, at, maxRecordBytes, big.startByte)) {
          at = { byte: rec.endByte, row: rec.row, line: rec.endLine };
          yield [rec];
        }
      }
      at = { byte: big.endByte, row: at.row + 1, line: big.endLine };
      yield [{ record: [], row: at.row, endByte: at.byte, endLine: at.line, raw: big.head, tooLarge: { sizeBytes: big.sizeBytes, startLine: big.startLine, limit: maxRecordBytes } }];
    }
  }
}

/**
 * How the reader has csv-parse read records (and what the byte scan, record-scan.ts, reads as csv-parse would): every
 * record comes through, ragged or not, with its byte offset and lines (`info`) and its raw text.
 */
export const PARSE_OPTIONS = {
  record_delimiter: ["\r\n", "\n", "\r"],
  relax_column_count: true,
  relax_quotes: true,
  skip_empty_lines: true,
  info: true,
  raw: true,
  bom: false,
};

/** One csv-parse pass from `from` up to `endByte` (exclusive) or the end of the file. */
async function* parseFrom(storage: Storage, key: string, delimiter: string, from: ReadFrom, maxRecordBytes: number, endByte?: number): AsyncGenerator<ParsedRecord> {
  const source = await storage.read(key, { start: from.byte, ...(endByte === undefined ? {} : { end: endByte - 1 }) });
  const parser = parse({ ...PARSE_OPTIONS, delimiter, max_record_size: maxRecordBytes });
  source.on("error", (err) => parser.destroy(err));
  source.pipe(parser);
  let row = from.row;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { bytes: number; lines: number }; raw: string }>) {
      row += 1;
      yield { record: item.record.map(restoreCell), row, endByte: from.byte + item.info.bytes, endLine: from.line + item.info.lines, raw: recordText(item.raw) };
    }
  } finally {
    source.destroy();
  }
}

/**
 * csv-parse's raw text of a record as the record's own text: without its record delimiter, and without the line
 * breaks of blank lines before it that csv-parse's raw may begin with (a record never begins with one: a line break
 * in its first cell is inside quotes, after the quote).
 */
function recordText(raw: string): string {
  return raw.replace(/^[\r\n]+/, "").replace(/\r?\n$|\r$/, "");
}

/** Walks the file from `from` to the first record over the limit and past its end, holding none of it. */
async function findOversized(storage: Storage, key: string, delimiter: string, from: ReadFrom, maxRecordBytes: number): Promise<OversizedRecord> {
  const finder = new OversizedRecordFinder(delimiter.charCodeAt(0), maxRecordBytes, from);
  const source = await storage.read(key, { start: from.byte });
  try {
    for await (const chunk of source) {
      const found = finder.push(chunk as Buffer);
      if (found) return found;
    }
    const found = finder.end();
    // The parser said a record was too large; a walk that finds none means they disagree: fail rather than guess.
    if (!found) throw new CsvStructureError(`A record after line ${from.line} is larger than ${maxRecordBytes} bytes.`, from.line + 1);
    return found;
  } catch (err) {
    if (err instanceof UnclosedQuote) throw unclosedQuote(err.line, from.row + 1);
    throw err;
  } finally {
    source.destroy();
  }
}

function unclosedQuote(line: number, row: number): CsvStructureError {
  return new CsvStructureError(
    `A quoted field is never closed: the record starting at line ${line} (data row ${row}) has an opening quote with no closing quote before the end of the file.`,
    line,
  );
}

/** A csv-parse error as a CsvStructureError naming the line; anything else as it is. */
function structureError(err: unknown, at: ReadFrom): unknown {
  const e = err as { code?: string; message: string };
  if (typeof e.code !== "string" || !e.code.startsWith("CSV_")) return err;
  // The failing record starts on the line after the last good one.
  const line = at.line + 1;
  if (e.code === "CSV_QUOTE_NOT_CLOSED") return unclosedQuote(line, at.row + 1);
  return new CsvStructureError(`The CSV is malformed at line ${line}: ${e.message}`, line);
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
