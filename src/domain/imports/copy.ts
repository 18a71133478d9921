import type { ReservedSql } from "postgres";

/** Escapes a value for COPY's text format; null becomes \N. */
export function copyValue(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return "\\N";
  const s = String(v);
  // Fast path: most cells need no escaping.
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r"));
}

/**
 * COPY text written a line at a time as UTF-8 into a buffer of its own (not Node's shared pool: a parse thread hands
 * the finished bytes over by transfer), which grows when a line does not fit. Written as each row is validated, so a
 * batch holds bytes, not row objects (see RowHandler.encoder).
 */
export class CopyTextBuffer {
  private buf: Buffer;
  private at = 0;

  /** `bytes`: enough for the lines expected, so that the buffer rarely grows. */
  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(1024, bytes));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  /** Appends `line` (with its line end); returns the offset where it starts. */
  write(line: string): number {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (this.buf.length - this.at < line.length * 3) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(Math.ceil(this.buf.length * 1.5), this.at + line.length * 3));
      this.buf.copy(bigger, 0, 0, this.at);
      this.buf = bigger;
    }
    const start = this.at;
    this.at += this.buf.write(line, this.at);
    return start;
  }

  /**
   * Makes room for `bytes` more bytes and returns the offset where the next write starts: the put* calls after it,
   * up to that many bytes, write without checking (they are for text known to be ASCII, written a byte at a time in
   * JavaScript: no string to build, flatten and encode).
   */
  reserve(bytes: number): number {
    if (this.buf.length - this.at < bytes) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(Math.ceil(this.buf.length * 1.5), this.at + bytes));
      this.buf.copy(bigger, 0, 0, this.at);
      this.buf = bigger;
    }
    return this.at;
  }

  /** Appends `s`, which holds only ASCII characters. */
  putAscii(s: string): void {
    const buf = this.buf;
    let at = this.at;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.at = at;
  }

  /** Appends a non-negative integer in decimal (at most 16 digits). */
  putNumber(n: number): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    const buf = this.buf;
    let at = this.at + digits;
    this.at = at;
    let x = n;
    do {
      buf[--at] = 0x30 + (x % 10);
      x = Math.floor(x / 10);
    } while (x > 0);
  }

  putByte(b: number): void {
    this.buf[this.at++] = b;
  }

  /** Appends what `writer.write(id, …)` writes into the buffer at the offset it is given (it returns where it ended). */
  putFrom(writer: { write(id: number, out: Uint8Array, at: number): number }, id: number): void {
    this.at = writer.write(id, this.buf, this.at);
  }

  /** Keeps only the byte ranges `[starts[i], starts[i + 1])` (the last one up to the end) whose `keep(i)` holds, in order. */
  keepLines(starts: ArrayLike<number>, count: number, keep: (line: number) => boolean): void {
    let to = 0;
    for (let i = 0; i < count; i++) {
      if (!keep(i)) continue;
      const from = starts[i]!;
      const end = i + 1 < count ? starts[i + 1]! : this.at;
      if (from !== to) this.buf.copyWithin(to, from, end);
      to += end - from;
    }
    this.at = to;
  }

  /** The text written: a view of the buffer, which it hands over. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

/**
 * COPY rows into `table` through the reserved connection, honouring the stream's backpressure. A connection that dies
 * mid-COPY (pg_terminate_backend, network) closes the stream without "finish" or "drain": that rejects, never hangs.
 */
export async function copyRows(conn: ReservedSql, table: string, columns: readonly string[], rows: (string | number | null)[][]): Promise<void> {
  if (rows.length === 0) return;
  let text = "";
  for (const row of rows) text += copyLine(row);
  await copyText(conn, table, columns, text);
}

/** One row as a line of COPY's text format. */
export function copyLine(row: readonly (string | number | null | undefined)[]): string {
  return row.map(copyValue).join("\t") + "\n";
}

/** COPY text already encoded (copyLine; or as UTF-8 bytes) into `table`. */
export async function copyText(conn: ReservedSql, table: string, columns: readonly string[], text: string | Uint8Array): Promise<void> {
  if (text.length === 0) return;
  const stream = await conn.unsafe(`copy ${table} (${columns.join(", ")}) from stdin`).writable();
  let failure: Error | null = null;
  const done = new Promise<void>((resolve, reject) => {
    stream.on("finish", resolve);
    stream.on("error", (err: Error) => {
      failure = err;
      reject(err);
    });
    stream.on("close", () => {
      failure ??= new Error("The database connection closed during COPY.");
      reject(failure);
    });
  });
  done.catch(() => {});
  if (failure) throw failure;
  // Queued at once, without waiting for "drain" (a batch is bounded in rows and bytes), in pieces of COPY_PIECE bytes:
  // postgres.js copies each piece into a CopyData message of its own, and a fresh 2-3 MB message per batch cost the
  // worker more in page faults than the copying itself (100 COPYs of a 2.6 MB batch: 0.15-0.5 s of CPU, mostly system, on two machines).
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  for (let at = 0; at < bytes.length; at += COPY_PIECE) stream.write(bytes.subarray(at, at + COPY_PIECE));
  stream.end();
  await done;
}

/** Bytes per CopyData message: a COPY stream's rows may be split anywhere between messages. */
const COPY_PIECE = 64 * 1024;
