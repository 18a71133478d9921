import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InsufficientStorageError, NotFoundError, PayloadTooLargeError } from "../../src/domain/errors.js";
import { createStorage, type StorageEnv } from "../../src/storage/create.js";
import type { Storage } from "../../src/storage/storage.js";
import { mountTinyFs, openFds } from "../helpers/tiny-fs.js";

const MiB = 1024 * 1024;
const BUCKET = "roster-test";

const baseEnv: StorageEnv = {
  STORAGE_DRIVER: "local",
  STORAGE_DIR: "unused",
  S3_BUCKET: undefined,
  S3_REGION: "us-east-1",
  S3_ENDPOINT: undefined,
  S3_ACCESS_KEY_ID: undefined,
  S3_SECRET_ACCESS_KEY: undefined,
  S3_FORCE_PATH_STYLE: false,
  S3_CHECKSUM: "WHEN_REQUIRED",
};

interface Harness {
  env: StorageEnv;
  /** Local only: the directory, to look for stray temp files. */
  dir?: string;
  close(): Promise<void>;
}

async function localHarness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "roster-storage-"));
  return {
    env: { ...baseEnv, STORAGE_DRIVER: "local", STORAGE_DIR: dir },
    dir,
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

async function s3Harness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "roster-s3rver-"));
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: BUCKET }] });
  const { port } = (await server.run()) as { port: number };
  return {
    env: {
      ...baseEnv,
      STORAGE_DRIVER: "s3",
      S3_BUCKET: BUCKET,
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_ACCESS_KEY_ID: "S3RVER",
      S3_SECRET_ACCESS_KEY: "S3RVER",
      S3_FORCE_PATH_STYLE: true,
    },
    close: async () => {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Streams data in uneven chunks so no driver can rely on chunk boundaries lining up with anything. */
function streamOf(data: Buffer, chunkBytes = 64 * 1024 + 7): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunkBytes) yield data.subarray(i, i + chunkBytes);
    })(),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

let keySeq = 0;
const freshKey = (ext = "csv") => `uploads/ws-1/${Date.now()}-${++keySeq}.${ext}`;

describe.each([
  { driver: "local", setup: localHarness },
  { driver: "s3", setup: s3Harness },
])("$driver storage", ({ driver, setup }) => {
  let harness: Harness;
  let storage: Storage;
  // 12 MiB plus an odd tail: more than two S3 parts, and not a multiple of any buffer size.
  const big = randomBytes(12 * MiB + 12_345);

  beforeAll(async () => {
    harness = await setup();
    storage = createStorage(harness.env);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it("reports its driver and answers ping", async () => {
    expect(storage.driver).toBe(driver);
    await expect(storage.ping()).resolves.toBeUndefined();
  });

  it("round-trips a streamed 12 MiB body", async () => {
    const key = freshKey();
    const { sizeBytes } = await storage.write(key, streamOf(big), { maxBytes: big.length, contentType: "text/csv" });
    expect(sizeBytes).toBe(big.length);
    expect(await storage.size(key)).toBe(big.length);
    const back = await readAll(await storage.read(key));
    expect(back.length).toBe(big.length);
    expect(sha256(back)).toBe(sha256(big));
  }, 60_000);

  describe("ranged reads", () => {
    const data = randomBytes(100_000);
    const key = freshKey();
    beforeAll(async () => {
      await storage.write(key, streamOf(data, 4096));
    });

    it("start only reads to the end", async () => {
      expect((await readAll(await storage.read(key, { start: 99_000 }))).equals(data.subarray(99_000))).toBe(true);
    });
    it("start and inclusive end read exactly those bytes", async () => {
      const got = await readAll(await storage.read(key, { start: 10, end: 4106 }));
      expect(got.length).toBe(4097);
      expect(got.equals(data.subarray(10, 4107))).toBe(true);
    });
    it("a single byte", async () => {
      expect((await readAll(await storage.read(key, { start: 5, end: 5 }))).equals(data.subarray(5, 6))).toBe(true);
    });
    it("an end past EOF is clamped", async () => {
      expect((await readAll(await storage.read(key, { start: 99_990, end: 200_000 }))).equals(data.subarray(99_990))).toBe(true);
    });
    it("a start at or past EOF is a RangeError", async () => {
      await expect(storage.read(key, { start: 100_000 })).rejects.toBeInstanceOf(RangeError);
    });
    it("malformed ranges are refused", async () => {
      await expect(storage.read(key, { start: 10, end: 9 })).rejects.toBeInstanceOf(RangeError);
      await expect(storage.read(key, { start: -1 })).rejects.toBeInstanceOf(RangeError);
      await expect(storage.read(key, { start: 1.5 })).rejects.toBeInstanceOf(RangeError);
    });
  });

  it("delete removes; reads and size then throw NotFoundError; deleting again is fine", async () => {
    const key = freshKey();
    await storage.write(key, streamOf(Buffer.from("a,b\n1,2\n")));
    await storage.delete(key);
    await expect(storage.read(key)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.size(key)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.delete(key)).resolves.toBeUndefined();
  });

  it("a key that never existed is NotFoundError, and deleting it is fine", async () => {
    const key = freshKey();
    await expect(storage.read(key)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.read(key, { start: 0 })).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.size(key)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.delete(`exports/nobody/${Date.now()}.csv.gz`)).resolves.toBeUndefined();
  });

  it("accepts a body of exactly maxBytes", async () => {
    const key = freshKey();
    const data = randomBytes(1000);
    await expect(storage.write(key, streamOf(data, 100), { maxBytes: 1000 })).resolves.toEqual({ sizeBytes: 1000 });
    expect(await storage.size(key)).toBe(1000);
  });

  it.each([
    { case: "small body (single request)", bytes: 4096, maxBytes: 1000 },
    { case: "large body (multipart, parts already sent)", bytes: 12 * MiB, maxBytes: 6 * MiB },
  ])("overflow of a $case throws PayloadTooLargeError and leaves nothing behind", async ({ bytes, maxBytes }) => {
    const key = freshKey();
    const err = await storage.write(key, streamOf(big.subarray(0, bytes)), { maxBytes }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).details).toEqual({ limitBytes: maxBytes });
    await expect(storage.read(key)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.size(key)).rejects.toBeInstanceOf(NotFoundError);
    if (harness.dir) expect(await strayTempFiles(harness.dir)).toEqual([]);
  }, 60_000);

  it("a Buffer body (a pasted CSV) is written as is; over maxBytes it is refused and nothing is kept", async () => {
    const key = freshKey();
    const data = randomBytes(1000);
    await expect(storage.write(key, data, { maxBytes: 1000, contentType: "text/csv" })).resolves.toEqual({ sizeBytes: 1000 });
    expect(sha256(await readAll(await storage.read(key)))).toBe(sha256(data));

    const over = freshKey();
    const err = await storage.write(over, randomBytes(1001), { maxBytes: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    await expect(storage.size(over)).rejects.toBeInstanceOf(NotFoundError);
    if (harness.dir) expect(await strayTempFiles(harness.dir)).toEqual([]);
  });

  it("writes into a directory that does not exist yet, from a Buffer and from a stream", async () => {
    const fromBuffer = `uploads/${randomUUID()}/${randomUUID()}.upload`;
    const fromStream = `uploads/${randomUUID()}/${randomUUID()}.upload`;
    await storage.write(fromBuffer, Buffer.from("email\na@x.io\n"));
    await storage.write(fromStream, streamOf(Buffer.from("email\nb@x.io\n")));
    expect((await readAll(await storage.read(fromBuffer))).toString()).toBe("email\na@x.io\n");
    expect((await readAll(await storage.read(fromStream))).toString()).toBe("email\nb@x.io\n");
  });

  it("overwrite replaces the object, even with a shorter one", async () => {
    const key = freshKey();
    await storage.write(key, streamOf(Buffer.from("first version, quite long\n")));
    await storage.write(key, streamOf(Buffer.from("second\n")));
    expect(await storage.size(key)).toBe(7);
    expect((await readAll(await storage.read(key))).toString()).toBe("second\n");
  });

  it("a failed overwrite keeps the previous object", async () => {
    const key = freshKey();
    await storage.write(key, streamOf(Buffer.from("keep me\n")));
    await expect(storage.write(key, streamOf(randomBytes(5000)), { maxBytes: 100 })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect((await readAll(await storage.read(key))).toString()).toBe("keep me\n");
    if (harness.dir) expect(await strayTempFiles(harness.dir)).toEqual([]);
  });

  it("a body that fails mid-stream rejects the write and leaves nothing behind", async () => {
    const key = freshKey();
    const body = Readable.from(
      (async function* () {
        yield randomBytes(64 * 1024);
        throw new Error("client went away");
      })(),
    );
    await expect(storage.write(key, body)).rejects.toThrow("client went away");
    await expect(storage.read(key)).rejects.toBeInstanceOf(NotFoundError);
    if (harness.dir) expect(await strayTempFiles(harness.dir)).toEqual([]);
  });

  it("readers never see a half-written object", async () => {
    const key = freshKey();
    await storage.write(key, streamOf(Buffer.from("old\n")));
    const body = new PassThrough();
    const writing = storage.write(key, body);
    body.write(randomBytes(256 * 1024));
    await sleep(100); // let the driver consume and persist what it has so far
    expect((await readAll(await storage.read(key))).toString()).toBe("old\n");
    expect(await storage.size(key)).toBe(4);
    body.end(Buffer.from("tail"));
    await expect(writing).resolves.toEqual({ sizeBytes: 256 * 1024 + 4 });
    expect(await storage.size(key)).toBe(256 * 1024 + 4);
  });

  it.each(["../x", "/abs", "a\\b", "uploads/../../etc/passwd", "", "a//b", "a/./b", "a/", "a\u0000b"])(
    "rejects the invalid key %j everywhere",
    async (key) => {
      await expect(storage.write(key, streamOf(Buffer.from("x")))).rejects.toThrow(/Invalid storage key/);
      await expect(storage.read(key)).rejects.toThrow(/Invalid storage key/);
      await expect(storage.size(key)).rejects.toThrow(/Invalid storage key/);
      await expect(storage.delete(key)).rejects.toThrow(/Invalid storage key/);
    },
  );

  it("accepts the key shapes the service uses", async () => {
    for (const key of ["uploads/0b6c/1f2e.csv", "exports/0b6c/9a8b.csv.gz"]) {
      await storage.write(key, streamOf(Buffer.from("x")));
      expect(await storage.size(key)).toBe(1);
    }
  });
});

describe("local: a full disk", () => {
  let fs: Awaited<ReturnType<typeof mountTinyFs>>;
  beforeAll(async () => {
    fs = await mountTinyFs(256 * 1024);
  });
  afterAll(async () => {
    await fs?.unmount();
  });

  it.each([
    ["stream", () => Readable.from([randomBytes(MiB)])],
    ["buffer", () => randomBytes(MiB)],
  ])("writing a %s past the free space throws InsufficientStorageError, deletes the partial file and closes its handle", async (label, body) => {
    const storage = createStorage({ ...baseEnv, STORAGE_DIR: fs.dir });
    await storage.write(`uploads/${label}/first.csv`, Buffer.from("fits\n"));
    const before = await openFds();
    const err = await storage.write(`uploads/${label}/big.csv`, body()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientStorageError);
    expect((err as InsufficientStorageError).code).toBe("insufficient_storage");
    expect(await readdir(join(fs.dir, "uploads", label))).toEqual(["first.csv"]);
    await sleep(50);
    expect(await openFds()).toBe(before);
    // The space came back: the next write works.
    await storage.write(`uploads/${label}/small.csv`, Buffer.from("ok\n"));
    expect(await storage.size(`uploads/${label}/small.csv`)).toBe(3);
  });
});

describe("ping reports an unusable backend", () => {
  it("local: STORAGE_DIR is a file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "roster-storage-"));
    try {
      const file = join(dir, "not-a-dir");
      await writeFile(file, "x");
      await expect(createStorage({ ...baseEnv, STORAGE_DIR: file }).ping()).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("s3: the bucket does not exist", async () => {
    const harness = await s3Harness();
    try {
      await expect(createStorage({ ...harness.env, S3_BUCKET: "no-such-bucket" }).ping()).rejects.toThrow();
    } finally {
      await harness.close();
    }
  });
});

describe("createStorage", () => {
  it("refuses s3 without a bucket or with half the credentials", () => {
    expect(() => createStorage({ ...baseEnv, STORAGE_DRIVER: "s3" })).toThrow(/S3_BUCKET/);
    expect(() => createStorage({ ...baseEnv, STORAGE_DRIVER: "s3", S3_BUCKET: BUCKET, S3_ACCESS_KEY_ID: "k" })).toThrow(
      /S3_SECRET_ACCESS_KEY/,
    );
  });
});

async function strayTempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((name) => name.endsWith(".tmp"));
}
