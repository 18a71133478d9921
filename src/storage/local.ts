import { randomUUID } from "node:crypto";
import { constants, createWriteStream } from "node:fs";
import { access, mkdir, open, rename, rm, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { InsufficientStorageError, NotFoundError, PayloadTooLargeError } from "../domain/errors.js";
import type { StorageEnv } from "./create.js";
import { assertValidKey, assertValidRange, byteLimit, type ByteRange, type Storage, type StorageBody } from "./storage.js";

/** Files under one directory; on several hosts that directory must be a shared volume. */
export class LocalStorage implements Storage {
  readonly driver = "local";
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
  }

  get origin(): StorageEnv {
    return { STORAGE_DRIVER: "local", STORAGE_DIR: this.root } as StorageEnv;
  }

  async write(key: string, body: StorageBody, opts: { maxBytes?: number } = {}): Promise<{ sizeBytes: number }> {
    const path = this.pathFor(key);
    // Same directory so the rename is atomic; dot-prefixed so it cannot collide with a real key's name.
    const temp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
    // The directory usually exists: open first, create the directory only when the open says it is missing.
    const handle = await open(temp, "wx").catch(async (err: unknown) => {
      if (!isMissing(err)) throw err;
      await mkdir(dirname(path), { recursive: true });
      return open(temp, "wx");
    });
    try {
      let sizeBytes: number;
      if (Buffer.isBuffer(body)) {
        if (opts.maxBytes !== undefined && body.length > opts.maxBytes) throw new PayloadTooLargeError(opts.maxBytes);
        // sync before close, so a rename never publishes a file whose data is still in the page cache.
        await handle.writeFile(body);
        await handle.sync();
        await handle.close();
        sizeBytes = body.length;
      } else {
        const counter = byteLimit(opts.maxBytes);
        // flush: fsync before close (as above). The stream closes the handle.
        await pipeline(body, counter, createWriteStream(temp, { fd: handle, flush: true }));
        sizeBytes = counter.bytes;
      }
      await rename(temp, path);
      // The rename lives in the directory: sync it too, or a machine crash could lose the file after the caller
      // (an import row committed in PostgreSQL) already counts on it.
      const dir = await open(dirname(path), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      return { sizeBytes };
    } catch (err) {
      await handle.close().catch(() => {});
      await rm(temp, { force: true });
      throw isFull(err) ? new InsufficientStorageError() : err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    assertValidRange(range);
    // Open first so a missing file is reported here rather than as a stream error later.
    const handle = await open(this.pathFor(key), "r").catch(rethrowMissing);
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new NotFoundError("File");
      if (range && range.start >= info.size) throw new RangeError(`Range starts at ${range.start}, past the end (${info.size} bytes)`);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle.createReadStream({ start: range?.start, end: range?.end });
  }

  async size(key: string): Promise<number> {
    const info = await stat(this.pathFor(key)).catch(rethrowMissing);
    if (!info.isFile()) throw new NotFoundError("File");
    return info.size;
  }

  async delete(key: string): Promise<void> {
    await unlink(this.pathFor(key)).catch((err: unknown) => {
      if (!isMissing(err)) throw err;
    });
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, constants.R_OK | constants.W_OK);
  }

  private pathFor(key: string): string {
    assertValidKey(key);
    return join(this.root, key);
  }
}

/** No space or no quota left: the client is told 507, not 500. */
function isFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function rethrowMissing(err: unknown): never {
  throw isMissing(err) ? new NotFoundError("File") : err;
}
