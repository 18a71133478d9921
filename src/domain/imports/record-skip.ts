/**
 * Finds a CSV record too large to parse without holding it: a byte-level, quote-aware walk with csv-parse's rules as
 * the reader sets them (relax_quotes, `""` escapes, CRLF/LF/CR record delimiters, blank lines skipped), keeping only a
 * few counters and the record's first bytes. Used only after the parser refused a record as too large, so ordinary
 * files never pay for a second pass.
 */

/** Bytes of an oversized record kept for the error report: its value shows the first 200 characters (≤ 800 bytes). */
const HEAD_BYTES = 1024;
const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

export interface OversizedRecord {
  /** Offset of the record's first byte (after any blank lines) and just after its record delimiter (or the file's end). */
  startByte: number;
  endByte: number;
  /** Physical lines (1-based, header included) where it starts and ends. */
  startLine: number;
  endLine: number;
  /** Bytes of the record, its delimiter excluded. */
  sizeBytes: number;
  /** Its first bytes, decoded: what the error report repeats. */
  head: string;
}

/** The file ends inside a quoted field of the record starting at `line`: no later record boundary can be trusted. */
export class UnclosedQuote extends Error {
  constructor(readonly line: number) {
    super(`quote opened on line ${line} is never closed`);
  }
}

export class OversizedRecordFinder {
  private pos: number;
  /** The physical line the walk is on. */
  private line: number;
  private inRecord = false;
  private recordStart = 0;
  private recordLine = 0;
  private fieldStart = true;
  private quoting = false;
  /** A quote seen inside a quoted field: the next byte says whether it is escaped (`""`) or closes the field. */
  private quotePending = false;
  /** Offset of a CR ending a record, until the next byte says whether it is a CRLF. */
  private crAt = -1;
  private lastByte = -1;
  private readonly head = Buffer.alloc(HEAD_BYTES);
  private headLength = 0;

  /** `from`: a record boundary (byte offset, and the physical lines before it). */
  constructor(
    private readonly delimiter: number,
    private readonly maxRecordBytes: number,
    from: { byte: number; line: number },
  ) {
    this.pos = from.byte;
    this.line = from.line + 1;
  }

  /** Feeds the next chunk of the file; returns the first record over the limit once its end is seen. */
  push(chunk: Buffer): OversizedRecord | null {
    for (let i = 0; i < chunk.length; i++, this.pos++) {
      const found = this.step(chunk[i]!);
      if (found) return found;
    }
    return null;
  }

  /** The end of the file: the last record may end without a delimiter. */
  end(): OversizedRecord | null {
    if (this.quoting && !this.quotePending) throw new UnclosedQuote(this.recordLine);
    if (this.crAt >= 0) return this.endRecord(this.crAt, this.crAt + 1);
    return this.inRecord ? this.endRecord(this.pos, this.pos) : null;
  }

  private step(b: number): OversizedRecord | null {
    if (this.crAt >= 0) {
      const crAt = this.crAt;
      this.crAt = -1;
      if (b === LF) return this.endRecord(crAt, this.pos + 1);
      const found = this.endRecord(crAt, crAt + 1);
      if (found) return found;
    }
    if (this.quoting) {
      if (this.quotePending) {
        this.quotePending = false;
        if (b === QUOTE) return this.keep(b);
        this.quoting = false;
        this.fieldStart = false;
        // The quote closed the field; this byte is read as outside quotes.
      } else {
        if (b === QUOTE) this.quotePending = true;
        else if (b === CR || (b === LF && this.lastByte !== CR)) this.line++;
        return this.keep(b);
      }
    }
    if (b === LF) return this.endRecord(this.pos, this.pos + 1);
    if (b === CR) {
      this.crAt = this.pos;
      return null;
    }
    if (!this.inRecord) {
      this.inRecord = true;
      this.recordStart = this.pos;
      this.recordLine = this.line;
      this.headLength = 0;
    }
    if (b === QUOTE && this.fieldStart) this.quoting = true;
    this.fieldStart = b === this.delimiter;
    return this.keep(b);
  }

  private keep(b: number): null {
    this.lastByte = b;
    if (this.headLength < HEAD_BYTES) this.head[this.headLength++] = b;
    return null;
  }

  /** A record delimiter at [at, next): the end of a record, or of a blank line the parser skips too. */
  private endRecord(at: number, next: number): OversizedRecord | null {
    const line = this.line;
    this.line++;
    this.lastByte = -1;
    this.fieldStart = true;
    if (!this.inRecord) return null;
    this.inRecord = false;
    const sizeBytes = at - this.recordStart;
    if (sizeBytes <= this.maxRecordBytes) return null;
    return {
      startByte: this.recordStart,
      endByte: next,
      startLine: this.recordLine,
      endLine: line,
      sizeBytes,
      head: this.head.subarray(0, this.headLength).toString("utf8"),
    };
  }
}
