/**
 * Checks every byte of an upload as it streams past, so the encoding is decided by the whole file and not only by the
 * sniffer's first 64 KiB: a file that is UTF-8 up to its last row but one is not UTF-8, and reading it as such would
 * store U+FFFD in place of that row's letters.
 */
import { isAscii, isUtf8 } from "node:buffer";
import type { Storage } from "../../storage/storage.js";
import { ValidationError } from "../errors.js";

export interface EncodingScan {
  /** Offset of the first byte that is not part of well-formed UTF-8, or null when the whole file is UTF-8. */
  firstInvalid: number | null;
  /** Up to 4 bytes starting at firstInvalid, as the file holds them (for the error message). */
  invalidBytes: Buffer | null;
  /** A well-formed multibyte UTF-8 sequence occurs somewhere: at least part of the file was written as UTF-8. */
  hasMultibyte: boolean;
  /** Offset of the first byte Windows-1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) outside UTF-8 sequences. */
  firstUndefined1252: number | null;
  undefined1252Byte: number | null;
}

const UNDEFINED_1252 = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** Feed it the upload's chunks in order (any sizes), then call end(). Keeps at most 3 bytes between chunks. */
export class EncodingScanner {
  private offset = 0;
  private carry: Buffer = Buffer.alloc(0);
  private readonly scan: EncodingScan = { firstInvalid: null, invalidBytes: null, hasMultibyte: false, firstUndefined1252: null, undefined1252Byte: null };

  push(chunk: Buffer): void {
    const base = this.offset - this.carry.length;
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    this.offset += chunk.length;
    if (this.decided()) return;
    const cut = completeLength(buf);
    const body = buf.subarray(0, cut);
    // Fast path (simdutf): almost every chunk of almost every file is well-formed UTF-8.
    if (isUtf8(body)) {
      if (!this.scan.hasMultibyte && !isAscii(body)) this.scan.hasMultibyte = true;
    } else {
      this.slowScan(body, base);
    }
    // A copy: the stream may reuse the chunk's memory.
    this.carry = Buffer.from(buf.subarray(cut));
  }

  end(): EncodingScan {
    // A sequence still open at the end of the file is cut short, hence invalid.
    if (this.carry.length && !this.decided()) this.slowScan(this.carry, this.offset - this.carry.length);
    this.carry = Buffer.alloc(0);
    return { ...this.scan };
  }

  /** Both facts that make the file mixed are known: nothing later can change the verdict. */
  private decided(): boolean {
    return this.scan.firstInvalid !== null && this.scan.hasMultibyte;
  }

  /** Byte by byte, after Unicode's table of well-formed UTF-8 (Table 3-7): only for chunks that are not UTF-8. */
  private slowScan(buf: Buffer, base: number): void {
    let i = 0;
    while (i < buf.length) {
      const n = sequenceLength(buf, i);
      if (n > 1) {
        this.scan.hasMultibyte = true;
        i += n;
        continue;
      }
      if (n === 1) {
        i += 1;
        continue;
      }
      if (this.scan.firstInvalid === null) {
        this.scan.firstInvalid = base + i;
        // The offending byte plus what follows it in this chunk, enough to recognise it.
        this.scan.invalidBytes = Buffer.from(buf.subarray(i, i + invalidSpan(buf, i)));
      }
      if (this.scan.firstUndefined1252 === null && UNDEFINED_1252.has(buf[i]!)) {
        this.scan.firstUndefined1252 = base + i;
        this.scan.undefined1252Byte = buf[i]!;
      }
      i += 1;
    }
  }
}

/** Length of the well-formed UTF-8 sequence at buf[i], or 0 when none starts there (or it is cut off by the end of buf). */
function sequenceLength(buf: Buffer, i: number): number {
  const b0 = buf[i]!;
  if (b0 < 0x80) return 1;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 === 0xe0) lo = 0xa0;
    if (b0 === 0xed) hi = 0x9f; // no UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return 0;
  if (i + n > buf.length) return 0;
  const b1 = buf[i + 1]!;
  if (b1 < lo || b1 > hi) return 0;
  for (let k = 2; k < n; k++) if ((buf[i + k]! & 0xc0) !== 0x80) return 0;
  return n;
}

/** How many bytes an invalid sequence at buf[i] spans: a lead byte with its continuation bytes (a cut-off sequence), or one byte. */
function invalidSpan(buf: Buffer, i: number): number {
  let n = 1;
  while (i + n < buf.length && n < 4 && (buf[i + n]! & 0xc0) === 0x80) n++;
  return n;
}

/** buf's length without a multibyte sequence that may continue in the next chunk (at most its 3 last bytes). */
function completeLength(buf: Buffer): number {
  let i = buf.length - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 3 && (buf[i]! & 0xc0) === 0x80) {
    i--;
    continuation++;
  }
  if (i < 0) return buf.length;
  const lead = buf[i]!;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return needed > continuation + 1 ? i : buf.length;
}

/** The encoding the whole file supports, or why none fits. UTF-16 (with a BOM) is decided by the sniffer alone. */
export type EncodingVerdict =
  | { encoding: "utf-8" | "windows-1252" }
  | { refuse: "mixed" | "undefined_1252"; offset: number; bytes: Buffer };

export function judgeEncoding(scan: EncodingScan): EncodingVerdict {
  if (scan.firstInvalid === null) return { encoding: "utf-8" };
  // Some rows are UTF-8 and some are not (a UTF-8 BOM counts as UTF-8): any one decoding of the file would turn some
  // rows into mojibake (`æ—¥æœ¬`) or U+FFFD, and nothing tells which rows are which.
  if (scan.hasMultibyte) return { refuse: "mixed", offset: scan.firstInvalid, bytes: scan.invalidBytes ?? Buffer.alloc(0) };
  if (scan.firstUndefined1252 !== null) return { refuse: "undefined_1252", offset: scan.firstUndefined1252, bytes: Buffer.from([scan.undefined1252Byte ?? 0]) };
  return { encoding: "windows-1252" };
}

/** 422 invalid_encoding naming the physical line (1-based, header included), the byte offset and the bytes in hex. */
export async function encodingRefusal(storage: Storage, key: string, verdict: Extract<EncodingVerdict, { refuse: string }>): Promise<ValidationError> {
  const line = await lineAt(storage, key, verdict.offset);
  const hex = verdict.bytes.toString("hex");
  const where = `line ${line} (byte offset ${verdict.offset}) has the byte${verdict.bytes.length > 1 ? "s" : ""} 0x${hex.toUpperCase()}`;
  const message =
    verdict.refuse === "mixed"
      ? `The file is not valid UTF-8: ${where}, while other parts of the file are UTF-8, so no single encoding reads it right. Save the whole file as UTF-8 and upload it again.`
      : `The file is neither UTF-8 nor Windows-1252: ${where}, which Windows-1252 does not define. Save the file as UTF-8 and upload it again.`;
  return new ValidationError("invalid_encoding", message, { line, byteOffset: verdict.offset, bytes: hex });
}

/** The physical line holding byte `offset` (CRLF, LF and CR each end one); reads the file up to it, only when refusing it. */
async function lineAt(storage: Storage, key: string, offset: number): Promise<number> {
  if (offset === 0) return 1;
  let line = 1;
  let lastWasCr = false;
  for await (const chunk of await storage.read(key, { start: 0, end: offset - 1 })) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) line++;
    // A CR ends a line by itself unless an LF follows (then the LF above counted it).
    for (let i = buf.indexOf(0x0d); i !== -1; i = buf.indexOf(0x0d, i + 1)) if (i + 1 < buf.length ? buf[i + 1] !== 0x0a : true) line++;
    // A CRLF cut by the chunk boundary was counted twice: once for the CR (no LF after it in its chunk), once for the LF.
    if (lastWasCr && buf[0] === 0x0a) line--;
    lastWasCr = buf[buf.length - 1] === 0x0d;
  }
  return line;
}
