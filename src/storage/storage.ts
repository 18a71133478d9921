import { Transform, type Readable, type TransformCallback } from "node:stream";
import type { Env } from "../config/env.js";
import { PayloadTooLargeError } from "../domain/errors.js";
import { LocalStorage } from "./local.js";
import { S3Storage } from "./s3.js";

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

export type StorageEnv = Pick<
  Env,
  | "STORAGE_DRIVER"
  | "STORAGE_DIR"
  | "S3_BUCKET"
  | "S3_REGION"
  | "S3_ENDPOINT"
  | "S3_ACCESS_KEY_ID"
  | "S3_SECRET_ACCESS_KEY"
  | "S3_FORCE_PATH_STYLE"
  | "S3_CHECKSUM"
>;

export function createStorage(env: StorageEnv): Storage {
  if (env.STORAGE_DRIVER === "local") return new LocalStorage(env.STORAGE_DIR);
  if (!env.S3_BUCKET) throw new Error("S3_BUCKET is required when STORAGE_DRIVER=s3");
  if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
    throw new Error("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together");
  }
  return new S3Storage(env.S3_BUCKET, {
    region: env.S3_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    requestChecksumCalculation: env.S3_CHECKSUM,
    responseChecksumValidation: env.S3_CHECKSUM,
    // Without explicit keys the SDK's default chain applies (instance role, AWS_* variables, ...).
    credentials:
      env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
        : undefined,
  });
}

/**
 * Keys become file paths in the local driver, so anything that could climb out of the storage
 * directory or mean different things on different systems is refused outright.
 * (Function declarations, not consts: the drivers import these while this module imports them.)
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
