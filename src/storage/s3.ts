import type { StorageEnv } from "./create.js";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NotFoundError, PayloadTooLargeError } from "../domain/errors.js";
import { assertValidKey, assertValidRange, byteLimit, type ByteRange, type Storage, type StorageBody } from "./storage.js";

/** Any S3-compatible object store (AWS, MinIO, R2, ...). */
export class S3Storage implements Storage {
  readonly driver = "s3";
  private readonly client: S3Client;
  /** Set by createStorage. */
  origin?: StorageEnv;

  constructor(
    private readonly bucket: string,
    config: S3ClientConfig,
  ) {
    this.client = new S3Client(config);
  }

  async write(
    key: string,
    body: StorageBody,
    opts: { maxBytes?: number; contentType?: string } = {},
  ): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    const counter = byteLimit(opts.maxBytes);
    const pumping = pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, counter);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: counter, ContentType: opts.contentType },
    });
    // Upload aborts its own multipart upload (and waits for in-flight parts) when reading counter fails,
    // and no object exists until the final Complete/Put, so an overflow leaves nothing to delete.
    // If the upload fails first, destroying counter unblocks the pump, which would otherwise wait on backpressure.
    const uploading = upload.done().catch((err: unknown) => {
      counter.destroy();
      throw err;
    });
    const [pumped, uploaded] = await Promise.allSettled([pumping, uploading]);
    if (pumped.status === "rejected" && pumped.reason instanceof PayloadTooLargeError) throw pumped.reason;
    if (uploaded.status === "rejected") throw uploaded.reason;
    if (pumped.status === "rejected") throw pumped.reason;
    return { sizeBytes: counter.bytes };
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(range);
    const res = await this.client
      .send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: range ? `bytes=${range.start}-${range.end ?? ""}` : undefined,
        }),
      )
      .catch(rethrowMapped);
    if (!(res.Body instanceof Readable)) throw new Error("S3 GetObject returned no Node.js stream body");
    return res.Body;
  }

  async size(key: string): Promise<number> {
    assertValidKey(key);
    const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })).catch(rethrowMapped);
    if (res.ContentLength === undefined) throw new Error("S3 HeadObject returned no Content-Length");
    return res.ContentLength;
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    // S3 answers 204 for a missing key too.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }
}

function rethrowMapped(err: unknown): never {
  if (err instanceof S3ServiceException) {
    // NoSuchBucket is also a 404 but means misconfiguration, not a missing file.
    if (err.name === "NoSuchKey" || (err.$metadata.httpStatusCode === 404 && err.name !== "NoSuchBucket")) {
      throw new NotFoundError("File");
    }
    if (err.name === "InvalidRange" || err.$metadata.httpStatusCode === 416) {
      throw new RangeError(`Requested range is not satisfiable: ${err.message}`);
    }
  }
  throw err;
}
