import { Transform, type Readable, type TransformCallback } from "node:stream";
import { PayloadTooLargeError } from "../domain/errors.js";
import type { StorageEnv } from "./create.js";

/** A stream, or bytes already in memory (a pasted CSV): those are written without stream machinery. */
export type StorageBody = NodeJS.ReadableStream | Readable | Buffer;
export interface ByteRange {
  start: number;
  /** Inclusive; omitted means to the end of the object. */
  end?: number;
}

export interface Storage {
  readonly driver: "local" | "s3";
  /**
   * The settings this storage was made from, so another thread (an import's parse thread) can open the same store
   * (createStorage). Absent for a storage that cannot be opened again that way.
   */
  readonly origin?: StorageEnv;
  /**
   * Streams body to key, overwriting it. Past maxBytes it stops, discards what it wrote and throws
   * PayloadTooLargeError; a failed write leaves any previous object under key untouched.
   * Readers never see a half-written object.
   */
  write(key: string, body: StorageBody, opts?: { maxBytes?: number; contentType?: string }): Promise<{ sizeBytes: number }>;
  /** Throws NotFoundError("File") when missing, RangeError when range.start is at or past the end. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** Size in bytes; NotFoundError when missing. */
  size(key: string): Promise<number>;
  /** Deleting a missing key is fine. */
  delete(key: string): Promise<void>;
  /** Health probe: resolves when usable, rejects otherwise. */
  ping(): Promise<void>;
}

/**
 * Keys become file paths in the local driver, so anything that could climb out of the storage
 * directory or mean different things on different systems is refused outright.
 */
export function assertValidKey(key: string): void {
  const problem =
    key === ""
      ? "is empty"
      : key.startsWith("/")
        ? "is absolute"
        : key.includes("\\")
          ? "contains a backslash"
          : /\p{Cc}/u.test(key)
            ? "contains a NUL or control character"
            : key.split("/").some((s) => s === "" || s === "." || s === "..")
              ? "has an empty, '.' or '..' segment"
              : undefined;
  if (problem) throw new Error(`Invalid storage key ${JSON.stringify(key)}: ${problem}`);
}

export function assertValidRange(range: ByteRange | undefined): void {
  if (!range) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new RangeError(`Invalid byte range ${JSON.stringify(range)}`);
  }
}

/** Passes bytes through, counting them, and fails the stream as soon as more than maxBytes arrived. */
export function byteLimit(maxBytes = Number.POSITIVE_INFINITY): Transform & { readonly bytes: number } {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bytes += chunk.length;
      if (bytes > maxBytes) callback(new PayloadTooLargeError(maxBytes));
      else callback(null, chunk);
    },
  });
  return Object.defineProperty(stream, "bytes", { get: () => bytes }) as Transform & { readonly bytes: number };
}
