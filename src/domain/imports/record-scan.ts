/**
 * The import reader's fast path: reads the records of a stored CSV with a byte-level scan instead of csv-parse, for
 * the records whose shape is plain: unquoted cells (a quote inside one is a literal character, as csv-parse's
 * relax_quotes reads it) and cells quoted from their first byte to a closing quote followed by a delimiter, a record
 * delimiter or the end of the file (`""` inside is one quote; delimiters and line breaks inside are data). Record
 * delimiters are CRLF, LF and CR, and empty lines are skipped, as the reader configures csv-parse.
 *
 * Anything else (a closing quote followed by other text, a quote never closed, a record larger than the limit) is
 * csv-parse's to read: the scan stops at that record's first byte and says where, and the reader hands the rest of
 * the file to csv-parse from there (reader.ts), so every error, message and limit stays csv-parse's own.
 *
 * Why: csv-parse with `info` and `raw` (the byte offsets and lines the checkpoints need, and the raw line of a ragged
 * row) costs ~7.6 µs a row on a typical contacts file; this scan ~1 µs. The unit tests hold it to csv-parse's output,
 * offsets and lines on random files. Its `raw` is the record's own text without its record delimiter (csv-parse's raw
 * can begin with the line breaks of blank lines before it), which is what a ragged row's error repeats.
 */
import type { ParsedRecord, ReadFrom } from "./reader.js";

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const TAB = 0x09;

/** Where the scan stopped without reading: a record it leaves to csv-parse (`at` is the record's boundary). */
export interface ScanStop {
  at: ReadFrom;
}

/**
 * Yields the records of `source` (the file's bytes from `from`, a record boundary) while they are plain, in blocks of
 * up to BLOCK_RECORDS in file order; returns null at the end of the source, or where csv-parse must take over.
 * `restore` maps each cell (restoreCell). Blocks, not records: each step of an async generator costs a promise and a
 * turn of the microtask queue, ~0.4 µs a record per generator a record passes through.
 */
export async function* scanRecords(
  source: AsyncIterable<Buffer>,
  delimiter: string,
  from: ReadFrom,
  maxRecordBytes: number,
  restore: (cell: string) => string,
): AsyncGenerator<ParsedRecord[], ScanStop | null> {
  const delim = delimiter.charCodeAt(0);
  const iterator = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  let base = from.byte;
  let pos = 0;
  let final = false;
  let row = from.row;
  /** Physical lines before `pos`. */
  let line = from.line;
  // Next LF / CR / quote at or after pos in buf (-1: none in buf); recomputed when pos passes them or buf changes.
  let nextLf = -1;
  let nextCr = -1;
  let nextQuote = -1;
  // Next backslash / tab (a tab that is not the delimiter): a line holding neither is `plain` (ParsedRecord.plain).
  let nextBackslash = -1;
  let nextTab = -1;
  const tabIsData = delim !== TAB;
  let scannedLf = false;
  let scannedCr = false;
  let scannedQuote = false;
  let scannedBackslash = false;
  let scannedTab = false;
  let out: ParsedRecord[] = [];

  /**
   * Reads on: at least as many new bytes as the unfinished record already holds, so a long record is copied and
   * looked at O(log n) times, not once per chunk.
   */
  const more = async (): Promise<void> => {
    const kept = buf.length - pos;
    const parts: Buffer[] = kept > 0 ? [buf.subarray(pos)] : [];
    let got = 0;
    while (!final && (got === 0 || got < kept)) {
      const { value, done } = await iterator.next();
      if (done) final = true;
      else {
        parts.push(value as Buffer);
        got += (value as Buffer).length;
      }
    }
    buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    base += pos;
    pos = 0;
    scannedLf = scannedCr = scannedQuote = scannedBackslash = scannedTab = false;
  };
  const stop = (): ScanStop => ({ at: { byte: base + pos, row, line } });

  try {
    for (;;) {
      if (pos >= buf.length) {
        if (final) {
          if (out.length) yield out;
          return null;
        }
        await more();
        continue;
      }
      const first = buf[pos]!;
      // Empty lines are skipped: a line break with nothing before it on its line.
      if (first === LF) {
        pos += 1;
        line += 1;
        continue;
      }
      if (first === CR) {
        if (pos + 1 >= buf.length && !final) {
          await more();
          continue;
        }
        pos += buf[pos + 1] === LF ? 2 : 1;
        line += 1;
        continue;
      }
      if (!scannedLf || (nextLf !== -1 && nextLf < pos)) {
        nextLf = buf.indexOf(LF, pos);
        scannedLf = true;
      }
      if (!scannedCr || (nextCr !== -1 && nextCr < pos)) {
        nextCr = buf.indexOf(CR, pos);
        scannedCr = true;
      }
      if (!scannedQuote || (nextQuote !== -1 && nextQuote < pos)) {
        nextQuote = buf.indexOf(QUOTE, pos);
        scannedQuote = true;
      }
      const lineEnd = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);

      if (nextQuote === -1 || (lineEnd !== -1 && nextQuote > lineEnd)) {
        // A line without quotes: the record is the line.
        if (lineEnd === -1 && !final) {
          if (buf.length - pos > maxRecordBytes) return yield* flushThen(out, stop());
          await more();
          continue;
        }
        const end = lineEnd === -1 ? buf.length : lineEnd;
        if (end - pos > maxRecordBytes) return yield* flushThen(out, stop());
        let next = end;
        if (end < buf.length) {
          if (buf[end] === CR) {
            if (end + 1 >= buf.length && !final) {
              await more();
              continue;
            }
            next = buf[end + 1] === LF ? end + 2 : end + 1;
          } else next = end + 1;
        }
        if (!scannedBackslash || (nextBackslash !== -1 && nextBackslash < pos)) {
          nextBackslash = buf.indexOf(BACKSLASH, pos);
          scannedBackslash = true;
        }
        if (tabIsData && (!scannedTab || (nextTab !== -1 && nextTab < pos))) {
          nextTab = buf.indexOf(TAB, pos);
          scannedTab = true;
        }
        const plain = (nextBackslash === -1 || nextBackslash >= end) && (!tabIsData || nextTab === -1 || nextTab >= end);
        const text = buf.toString("utf8", pos, end);
        row += 1;
        pos = next;
        out.push(new LineRecord(text, row, base + pos, line + 1, plain, delimiter, restore));
        if (next > end) line += 1;
        if (out.length >= BLOCK_RECORDS) {
          yield out;
          out = [];
        }
        continue;
      }

      // A record with a quote in it: cell by cell.
      const r = quotedRecord(buf, pos, delim, final, maxRecordBytes);
      if (r === MORE) {
        if (buf.length - pos > maxRecordBytes) return yield* flushThen(out, stop());
        await more();
        continue;
      }
      if (r === IRREGULAR) return yield* flushThen(out, stop());
      const raw = buf.toString("utf8", pos, r.end);
      for (let i = 0; i < r.cells.length; i++) r.cells[i] = restore(r.cells[i]!);
      row += 1;
      line += r.breaks;
      pos = r.next;
      out.push({ record: r.cells, row, endByte: base + pos, endLine: line + 1, raw });
      if (r.terminated) line += 1;
      if (out.length >= BLOCK_RECORDS) {
        yield out;
        out = [];
      }
    }
  } finally {
    await iterator.return?.();
  }
}

/**
 * A quote-free line's record: its cells are the line split on the delimiter (each restored), made only when something
 * reads them. A contacts import's valid lines are read from their text (RowHandler.line), and splitting every line
 * into ~11 strings was a quarter of the parse thread's time (1M rows: ~1.2 of ~5 s of CPU).
 */
class LineRecord implements ParsedRecord {
  private cells: string[] | undefined;

  constructor(
    public raw: string,
    public row: number,
    public endByte: number,
    public endLine: number,
    public plain: boolean,
    private readonly delimiter: string,
    private readonly restore: (cell: string) => string,
  ) {}

  get record(): string[] {
    if (this.cells === undefined) {
      const cells = this.raw.split(this.delimiter);
      for (let i = 0; i < cells.length; i++) cells[i] = this.restore(cells[i]!);
      this.cells = cells;
    }
    return this.cells;
  }

  set record(cells: string[]) {
    this.cells = cells;
  }
}

/**
 * Records a scan hands over at a time (ParsedRecord[]). Few: a block is alive until its last record is validated, and
 * what is alive when the young generation is collected is copied (256 a block: the parse thread's scavenges took
 * 1.6× as long; 16: as long as one at a time, and 1/16 of the generator steps).
 */
const BLOCK_RECORDS = 16;

/** The records not handed over yet, then `result` (where the scan stopped). */
async function* flushThen(out: ParsedRecord[], result: ScanStop): AsyncGenerator<ParsedRecord[], ScanStop> {
  if (out.length) yield out;
  return result;
}

const MORE = 1;
const IRREGULAR = 2;

interface QuotedRecord {
  cells: string[];
  /** Offset of the record's end (its record delimiter, or the end of the file). */
  end: number;
  /** Offset just past the record and its record delimiter. */
  next: number;
  /** Line breaks inside quoted cells. */
  breaks: number;
  /** Whether a record delimiter ended it (not the end of the file). */
  terminated: boolean;
}

/**
 * Reads the record at `pos` (its first byte is not a line break) when it is plain; MORE when its end is not in `buf`
 * yet; IRREGULAR for what csv-parse must read.
 */
function quotedRecord(buf: Buffer, pos: number, delim: number, final: boolean, maxRecordBytes: number): QuotedRecord | typeof MORE | typeof IRREGULAR {
  const cells: string[] = [];
  let i = pos;
  let breaks = 0;
  const len = buf.length;
  for (;;) {
    if (i - pos > maxRecordBytes) return IRREGULAR;
    if (i < len && buf[i] === QUOTE) {
      // A quoted cell: up to a quote not followed by another.
      let j = i + 1;
      let cell = "";
      let segment = j;
      for (;;) {
        const k = buf.indexOf(QUOTE, j);
        if (k === -1) return final ? IRREGULAR : MORE;
        if (k + 1 >= len) {
          if (!final) return MORE;
          cell += buf.toString("utf8", segment, k);
          breaks += countBreaks(buf, j, k);
          i = k + 1;
          break;
        }
        if (buf[k + 1] === QUOTE) {
          breaks += countBreaks(buf, j, k);
          cell += buf.toString("utf8", segment, k + 1);
          j = k + 2;
          segment = j;
          continue;
        }
        breaks += countBreaks(buf, j, k);
        cell += buf.toString("utf8", segment, k);
        i = k + 1;
        break;
      }
      cells.push(cell);
      if (i >= len) {
        if (!final) return MORE;
        return { cells, end: i, next: i, breaks, terminated: false };
      }
      const c = buf[i]!;
      if (c === delim) {
        i += 1;
        if (i >= len && !final) return MORE;
        if (i >= len) {
          cells.push("");
          return { cells, end: i, next: i, breaks, terminated: false };
        }
        continue;
      }
      if (c === LF) return { cells, end: i, next: i + 1, breaks, terminated: true };
      if (c === CR) {
        if (i + 1 >= len && !final) return MORE;
        return { cells, end: i, next: buf[i + 1] === LF ? i + 2 : i + 1, breaks, terminated: true };
      }
      return IRREGULAR;
    }
    // An unquoted cell: up to the next delimiter or line break; a quote inside it is a character.
    let e = i;
    while (e < len) {
      const c = buf[e]!;
      if (c === delim || c === LF || c === CR) break;
      e++;
    }
    if (e >= len && !final) return MORE;
    cells.push(buf.toString("utf8", i, e));
    if (e >= len) return { cells, end: e, next: e, breaks, terminated: false };
    const c = buf[e]!;
    if (c === delim) {
      i = e + 1;
      if (i >= len && !final) return MORE;
      if (i >= len) {
        cells.push("");
        return { cells, end: i, next: i, breaks, terminated: false };
      }
      continue;
    }
    if (c === LF) return { cells, end: e, next: e + 1, breaks, terminated: true };
    if (e + 1 >= len && !final) return MORE;
    return { cells, end: e, next: buf[e + 1] === LF ? e + 2 : e + 1, breaks, terminated: true };
  }
}

/** Line breaks in buf[from, to), inside a quoted cell: csv-parse counts each CR and each LF there (a CRLF twice). */
function countBreaks(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let p = buf.indexOf(LF, from); p !== -1 && p < to; p = buf.indexOf(LF, p + 1)) n++;
  for (let p = buf.indexOf(CR, from); p !== -1 && p < to; p = buf.indexOf(CR, p + 1)) n++;
  return n;
}
