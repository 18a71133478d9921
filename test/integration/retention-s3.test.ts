import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRetentionSweep, sweepSettings } from "../../src/domain/retention/sweep.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { createTestContext, type TestContext } from "../helpers/context.js";

// The upload-expiry checks of retention.test.ts, on the S3 driver (an in-process s3rver, as storage.test.ts runs it).
const BUCKET = "roster-retention";
let ctx: TestContext;
let client: Client;
let workers: WorkerPool;
let server: InstanceType<typeof S3rver>;
let s3: S3Client;
let s3Dir: string;

beforeAll(async () => {
  s3Dir = await mkdtemp(join(tmpdir(), "roster-s3rver-"));
  server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [{ name: BUCKET }] });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  ctx = await createTestContext({
    STORAGE_DRIVER: "s3",
    S3_BUCKET: BUCKET,
    S3_ENDPOINT: endpoint,
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
    S3_FORCE_PATH_STYLE: "true",
  });
  s3 = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  client = await createClient(ctx);
  workers = await startTestWorkers(ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
  await ctx?.close();
  s3?.destroy();
  await server?.close();
  if (s3Dir) await rm(s3Dir, { recursive: true, force: true });
});

const HOUR = 3600 * 1000;
const sweep = (hoursAhead: number) => runRetentionSweep({ db: ctx.db, storage: ctx.storage, log: ctx.logger }, sweepSettings(ctx.env), new Date(Date.now() + hoursAhead * HOUR));

/** Asks the bucket itself, not the driver under test. */
const inBucket = (key: string) =>
  s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
    () => true,
    (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
      if (err.name === "NotFound" || err.$metadata?.httpStatusCode === 404) return false;
      throw err;
    },
  );

describe("retention sweep on the S3 driver (clock set forward)", () => {
  it("deletes an ended import's upload object from the bucket after UPLOAD_RETENTION_HOURS; the import says its upload expired", async () => {
    expect(ctx.storage.driver).toBe("s3");
    const done = await importAndWait(client, "email,first_name,plan\nkeep@s3ret.test,Kim,pro\nnot-an-email,Secret-Cell-Value,free\n");
    expect(done.status).toBe("done");
    const [row] = await ctx.db.$client`select storage_key from imports where id = ${done.id}`;
    const key = row!.storage_key as string;
    expect(await inBucket(key)).toBe(true);

    expect((await sweep(23)).uploadsExpired).toBe(0);
    expect(await inBucket(key)).toBe(true);
    expect((await sweep(25)).uploadsExpired).toBe(1);
    expect(await inBucket(key)).toBe(false);

    const after = (await client.request("GET", `/v1/imports/${done.id}`)).json;
    expect(after.uploadExpiredAt).not.toBeNull();
    expect(after.sample).toEqual([]);
    expect(after.counts).toEqual(done.counts);
    expect(after.errors[0]).toMatchObject({ row: 2, code: "invalid_email", value: null });
    const report = await errorReport(client, done.id);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ row: "2", code: "invalid_email", value: "", first_name: "" });
    expect(report[0]!.message).toMatch(/\(cells expired with the upload\)$/);
    for (const action of ["start", "validate"]) {
      const res = await client.request("POST", `/v1/imports/${done.id}/${action}`);
      expect(res.status).toBe(409);
      expect(res.json.error.code).toBe("upload_expired");
    }
    expect((await sweep(25)).uploadsExpired).toBe(0);
  });
});
