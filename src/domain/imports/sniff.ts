/**
 * Works out how to read an uploaded CSV from its first bytes: the text encoding,
 * the delimiter, the line endings and the header row, plus a few sample rows for
 * the mapping screen. Anything that makes the file unreadable is a ValidationError
 * here, before a job is queued, so the person uploading gets the answer at once.
 */
import { isUtf8 } from "node:buffer";
import type { Transform } from "node:stream";
import { CsvError, parse } from "csv-parse/sync";
import iconv from "iconv-lite";
import { ValidationError } from "../errors.js";

/** Sample rows shown on the mapping screen; enough to recognise the columns. */
const SAMPLE_ROWS = 5;
/** Records used to vote on the delimiter; more adds cost but rarely changes the answer. */
const DELIMITER_SAMPLE_RECORDS = 10;
/** Share of NUL bytes above which the head is binary; text never has them, UTF-16 has ~50%. */
const MAX_NUL_RATIO = 0.01;
/** Order also breaks ties: "," is what most tools write. */
const DELIMITERS = [",", ";", "\t", "|"] as const;

export type CsvEncoding = "utf-8" | "windows-1252" | "utf-16le" | "utf-16be";
export type CsvDelimiter = (typeof DELIMITERS)[number];
export type LineEnding = "crlf" | "lf" | "cr" | "mixed";

export interface SniffResult {
  encoding: CsvEncoding;
  bom: boolean;
  bomBytes: number;
  delimiter: CsvDelimiter;
  lineEnding: LineEnding;
  headers: string[];
  sample: string[][];
  /** Byte offset in the original file (BOM included) where the first data row starts. */
  headerBytes: number;
}

export interface SniffOptions {
  /** True when `head` is the whole file, so its last line is not cut off. */
  isComplete?: boolean;
  /** The encoding of a file without a BOM when already decided from all its bytes (EncodingScanner): the head alone can mislead. */
  encoding?: "utf-8" | "windows-1252";
}

export const BOM_BYTES: Readonly<Record<Exclude<CsvEncoding, "windows-1252">, Buffer>> = {
  "utf-8": Buffer.from([0xef, 0xbb, 0xbf]),
  "utf-16le": Buffer.from([0xff, 0xfe]),
  "utf-16be": Buffer.from([0xfe, 0xff]),
};

/** The encoding announced by a byte order mark at the start of `head`, if any. */
const BOMS = Object.entries(BOM_BYTES) as [CsvEncoding, Buffer][];

export function detectBom(head: Buffer): { encoding: CsvEncoding; bytes: number } | null {
  for (const [encoding, bom] of BOMS) {
    if (head.length >= bom.length && head.compare(bom, 0, bom.length, 0, bom.length) === 0) {
      return { encoding, bytes: bom.length };
    }
  }
  return null;
}

/**
 * A stream turning the file's raw bytes into text for `encoding`, dropping a BOM.
 * Used for UTF-8 too so every import reads through the same path, and because the
 * decoder keeps multibyte characters that straddle chunk boundaries intact.
 */
export function decodeStream(encoding: CsvEncoding): Transform {
  // iconv-lite types it as ReadWriteStream, but in Node it is a stream.Transform.
  return iconv.decodeStream(encoding, { stripBOM: true }) as unknown as Transform;
}

export function sniffCsv(head: Buffer, opts: SniffOptions = {}): SniffResult {
  const isComplete = opts.isComplete ?? false;
  const bom = detectBom(head);
  rejectBinary(head, bom);

  const bomBytes = bom?.bytes ?? 0;
  let body = head.subarray(bomBytes);
  let encoding: CsvEncoding;
  if (bom) {
    encoding = bom.encoding;
    // A cut in the middle of a UTF-16 code unit would decode to U+FFFD.
    if (encoding !== "utf-8" && !isComplete && body.length % 2 === 1) body = body.subarray(0, -1);
  } else {
    if (!isComplete) body = trimIncompleteUtf8(body);
    encoding = opts.encoding ?? (isUtf8(body) ? "utf-8" : "windows-1252");
  }
  // UTF-8 (already checked, or decided from every byte) decodes as Node's own decoder would inside iconv-lite.
  const text = encoding === "utf-8" ? body.toString("utf8") : iconv.decode(body, encoding, { stripBOM: false });
  if (text.trim() === "") throw emptyFile();

  const layout = scanLayout(text, isComplete);
  if (layout.headerEnd === 0) {
    throw new ValidationError(
      "header_too_long",
      "The first row (the column names) does not end within the first part of the file: check that the file really is CSV with one row per line.",
    );
  }
  const delimiter = pickDelimiter(layout.delimiterCounts);
  const records = layout.quoted ? parseRecords(text.slice(0, layout.cutAt), delimiter) : splitRecords(text.slice(0, layout.cutAt), delimiter);
  const [headerRecord, ...rawSample] = records;
  if (!headerRecord) throw emptyFile();
  const named = headerRecord.map((h) => h.trim());
  const headers = named.slice(0, namedWidth(named, rawSample));
  checkHeaders(headers);
  const sample = rawSample.map((r) => dropBlankTail(r, headers.length, named.length));

  return {
    encoding,
    bom: bom !== null,
    bomBytes,
    delimiter,
    lineEnding: lineEndingOf(layout.breaks),
    headers,
    sample,
    headerBytes: bomBytes + encodedLength(text.slice(0, layout.headerEnd), encoding),
  };
}

function emptyFile(): ValidationError {
  return new ValidationError("empty_file", "The file is empty: the first row must hold the column names.");
}

const BINARY_SIGNATURES = [
  Buffer.from([0x89, 0x50, 0x4e, 0x47]), // PNG
  Buffer.from([0x50, 0x4b, 0x03, 0x04]), // ZIP, so also .xlsx
  Buffer.from([0xd0, 0xcf, 0x11, 0xe0]), // OLE2, so old .xls
  Buffer.from([0x1f, 0x8b]), // gzip
];

function rejectBinary(head: Buffer, bom: { encoding: CsvEncoding } | null): void {
  const binary = () =>
    new ValidationError("not_csv", "The file does not look like CSV text (it looks like binary data).");
  if (BINARY_SIGNATURES.some((sig) => head.subarray(0, sig.length).equals(sig))) throw binary();
  if (bom && bom.encoding !== "utf-8") return;

  let nuls = 0;
  let oddNuls = 0;
  for (let i = 0; i < head.length; i++) {
    if (head[i] === 0) {
      nuls++;
      if (i % 2 === 1) oddNuls++;
    }
  }
  if (head.length === 0 || nuls / head.length <= MAX_NUL_RATIO) return;
  // ASCII-heavy UTF-16 has a NUL in every other byte; say so, as the fix differs.
  const half = head.length / 2;
  if (oddNuls > half * 0.9 || nuls - oddNuls > half * 0.9) {
    throw new ValidationError(
      "not_csv",
      "The file looks like UTF-16 text without a byte order mark: save it as UTF-8 CSV and upload it again.",
    );
  }
  throw binary();
}

/** Drops a multibyte UTF-8 sequence cut short at the end of the head (at most 3 bytes). */
function trimIncompleteUtf8(buf: Buffer): Buffer {
  let i = buf.length - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 3 && ((buf[i] ?? 0) & 0xc0) === 0x80) {
    i--;
    continuation++;
  }
  if (i < 0) return buf;
  const lead = buf[i] ?? 0;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return needed > continuation + 1 ? buf.subarray(0, i) : buf;
}

interface Layout {
  /** End of the text to parse: after the last complete record, or all of it. */
  cutAt: number;
  /** End of the header record, record break included; 0 when it has none yet. */
  headerEnd: number;
  breaks: { crlf: number; lf: number; cr: number };
  delimiterCounts: Map<CsvDelimiter, number[]>;
  /** Whether the text up to cutAt has a quote anywhere: without one, records are plain lines split at the delimiter. */
  quoted: boolean;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
/** DELIMITERS by character code (all ASCII), as indexes into the per-record counts; -1 for any other character. */
const DELIMITER_INDEX = new Int8Array(128).fill(-1);
DELIMITERS.forEach((d, i) => (DELIMITER_INDEX[d.charCodeAt(0)] = i));

/**
 * One quote-aware pass over the text. A quote simply toggles the quoted state:
 * that is right for RFC 4180 ("" escapes toggle twice), and for anything it gets
 * wrong csv-parse rejects the file anyway.
 */
function scanLayout(text: string, isComplete: boolean): Layout {
  const breaks = { crlf: 0, lf: 0, cr: 0 };
  const perRecord: number[][] = DELIMITERS.map(() => []);
  const current = DELIMITERS.map(() => 0);
  let inQuotes = false;
  let quoteAt = -1;
  let recordStart = 0;
  let lastBreakEnd = 0;
  let headerEnd = 0;
  let sampled = 0;

  // A record is text[recordStart, breakStart) and its break; records end outside quotes only, so a record's text
  // never ends in \r or \n, and it is blank (skipped by the parser too: neither header nor sample) when empty.
  const endRecord = (breakStart: number, breakEnd: number) => {
    if (breakStart > recordStart) {
      if (headerEnd === 0) headerEnd = breakEnd;
      if (sampled < DELIMITER_SAMPLE_RECORDS) {
        for (let d = 0; d < current.length; d++) perRecord[d]!.push(current[d]!);
        sampled++;
      }
    }
    current.fill(0);
    recordStart = breakEnd;
  };

  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === QUOTE) {
      inQuotes = !inQuotes;
      if (quoteAt < 0) quoteAt = i;
    } else if (inQuotes) {
      continue;
    } else if (ch === LF) {
      breaks.lf++;
      endRecord(i, (lastBreakEnd = i + 1));
    } else if (ch === CR) {
      const breakStart = i;
      if (text.charCodeAt(i + 1) === LF) {
        breaks.crlf++;
        i++;
      } else if (i + 1 === text.length && !isComplete) {
        break; // may be the first half of a \r\n cut in two
      } else {
        breaks.cr++;
      }
      endRecord(breakStart, (lastBreakEnd = i + 1));
    } else if (ch < 128) {
      const d = DELIMITER_INDEX[ch]!;
      if (d >= 0) current[d]!++;
    }
  }
  if (isComplete && recordStart < text.length) {
    endRecord(text.length, text.length);
    lastBreakEnd = text.length;
  }
  const cutAt = isComplete ? text.length : lastBreakEnd;
  const delimiterCounts = new Map<CsvDelimiter, number[]>(DELIMITERS.map((d, i) => [d, perRecord[i]!]));
  return { cutAt, headerEnd, breaks, delimiterCounts, quoted: quoteAt >= 0 && quoteAt < cutAt };
}

/**
 * The header decides which delimiters are candidates (it must contain one); the
 * winner is the candidate whose count in the following records matches the
 * header's most often, then the one splitting into more columns.
 */
function pickDelimiter(counts: Map<CsvDelimiter, number[]>): CsvDelimiter {
  let best: { d: CsvDelimiter; consistency: number; columns: number } | null = null;
  for (const d of DELIMITERS) {
    const perRecord = counts.get(d) ?? [];
    const inHeader = perRecord[0] ?? 0;
    if (inHeader === 0) continue;
    const consistency = perRecord.filter((n) => n === inHeader).length / perRecord.length;
    if (!best || consistency > best.consistency || (consistency === best.consistency && inHeader > best.columns)) {
      best = { d, consistency, columns: inHeader };
    }
  }
  return best?.d ?? ",";
}

/**
 * parseRecords for text without a quote, where csv-parse's options above reduce to this: records end at \r\n, \n
 * or \r; empty lines are skipped; cells are split at the delimiter, untrimmed; at most 1 + SAMPLE_ROWS records.
 * Most uploads have no quotes in their first rows, and csv-parse's set-up costs more than the split itself
 * (test/unit/sniff.test.ts checks the two agree).
 */
export function splitRecords(text: string, delimiter: CsvDelimiter): string[][] {
  const records: string[][] = [];
  let start = 0;
  while (start < text.length && records.length < 1 + SAMPLE_ROWS) {
    let end = start;
    while (end < text.length) {
      const ch = text.charCodeAt(end);
      if (ch === LF || ch === CR) break;
      end++;
    }
    if (end > start) records.push(text.slice(start, end).split(delimiter));
    start = end + (text.charCodeAt(end) === CR && text.charCodeAt(end + 1) === LF ? 2 : 1);
  }
  return records;
}

export function parseRecords(text: string, delimiter: CsvDelimiter): string[][] {
  // Physical lines consumed by the records parsed so far: a broken record starts on the next one.
  let linesDone = 0;
  try {
    return parse(text, {
      bom: false,
      delimiter,
      // As the import's reader: a stray quote inside an unquoted cell is kept as text.
      relax_quotes: true,
      on_record: (record: string[], ctx: { lines: number }) => {
        linesDone = ctx.lines;
        return record;
      },
      // Ragged rows are the import's business (it reports them per row); the preview still shows them.
      relax_column_count: true,
      record_delimiter: ["\r\n", "\n", "\r"],
      skip_empty_lines: true,
      // Records rather than to_line: a quoted newline would otherwise eat into the sample.
      to: 1 + SAMPLE_ROWS,
    });
  } catch (err) {
    if (err instanceof CsvError) {
      const line = linesDone + 1;
      const message =
        err.code === "CSV_QUOTE_NOT_CLOSED"
          ? `The file is not valid CSV: the quoted field starting on line ${line} is never closed.`
          : `The file is not valid CSV at line ${line}: ${err.message}.`;
      throw new ValidationError("malformed_csv", message, { reason: err.code, line });
    }
    throw err;
  }
}

/**
 * Spreadsheets often save trailing empty header cells (`Email;Name;;`): those columns are not part of the file's
 * header as long as the sample holds nothing under them. A trailing unnamed column with data stays, and so is
 * refused by checkHeaders like any unnamed column, so no cell is silently dropped.
 */
function namedWidth(headers: string[], sample: string[][]): number {
  let width = headers.length;
  while (width > 1 && headers[width - 1] === "" && sample.every((r) => (r[width - 1] ?? "").trim() === "")) width--;
  return width;
}

/**
 * A record's cells under the trailing unnamed columns (between `named` and `fileWidth`, the header row's cell count)
 * are dropped when blank; a record with data there is returned whole, so the import reports it as ragged.
 */
export function dropBlankTail(record: string[], named: number, fileWidth: number): string[] {
  if (record.length <= named || record.length > fileWidth) return record;
  for (let i = named; i < record.length; i++) if (record[i]!.trim() !== "") return record;
  return record.slice(0, named);
}

function checkHeaders(headers: string[]): void {
  const emptyColumns = headers.flatMap((h, i) => (h === "" ? [i + 1] : []));
  const seen = new Map<string, { name: string; count: number }>();
  for (const h of headers) {
    if (h === "") continue;
    const entry = seen.get(h.toLowerCase());
    if (entry) entry.count++;
    else seen.set(h.toLowerCase(), { name: h, count: 1 });
  }
  const duplicates = [...seen.values()].filter((e) => e.count > 1).map((e) => e.name);
  if (emptyColumns.length === 0 && duplicates.length === 0) return;

  const emptyMessage = `Column${emptyColumns.length > 1 ? "s" : ""} ${listOf(emptyColumns.map(String))} ${emptyColumns.length > 1 ? "have" : "has"} no name in the first row.`;
  const duplicateMessage = `The column name${duplicates.length > 1 ? "s" : ""} ${listOf(duplicates.map((d) => `"${d}"`))} appear${duplicates.length > 1 ? "" : "s"} more than once (names are compared ignoring case).`;
  if (emptyColumns.length > 0 && duplicates.length > 0) {
    throw new ValidationError("invalid_header", `${emptyMessage} ${duplicateMessage}`, {
      columns: emptyColumns,
      headers: duplicates,
    });
  }
  if (emptyColumns.length > 0) {
    throw new ValidationError("empty_header", emptyMessage, { columns: emptyColumns });
  }
  if (duplicates.length > 0) {
    throw new ValidationError("duplicate_header", duplicateMessage, { headers: duplicates });
  }
}

function listOf(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

function lineEndingOf(breaks: Layout["breaks"]): LineEnding {
  const kinds = (["crlf", "lf", "cr"] as const).filter((k) => breaks[k] > 0);
  if (kinds.length > 1) return "mixed";
  // A single line without a break reads fine either way; "lf" is the neutral answer.
  return kinds[0] ?? "lf";
}

function encodedLength(text: string, encoding: CsvEncoding): number {
  if (encoding === "utf-8") return Buffer.byteLength(text, "utf8");
  if (encoding === "windows-1252") return text.length; // one byte per character
  return text.length * 2; // UTF-16 code units
}
