import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { createTestContext, type TestContext } from "../helpers/context.js";
import { dumpRedis } from "../helpers/redis-dump.js";
import { waitForComputed } from "../helpers/segments.js";

/** Where the files live, and how to read every byte of them back without the driver under test. */
interface StorageSetup {
  env: Record<string, string>;
  /** Every stored file, name and bytes, as text. */
  dump(ctx: TestContext): Promise<string>;
  close(): Promise<void>;
}

/** Every file under the storage directory, path and bytes. */
async function localTree(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    parts.push(file, await readFile(file, "latin1"));
  }
  return parts.join("\n");
}

const local = async (): Promise<StorageSetup> => ({ env: {}, dump: (ctx) => localTree(ctx.storageDir), close: async () => {} });

/** The S3 driver against an in-process s3rver (as retention-s3.test.ts and storage.test.ts run it), read back through the bucket's own API. */
async function s3(): Promise<StorageSetup> {
  const bucket = "roster-erase";
  const dir = await mkdtemp(path.join(tmpdir(), "roster-s3rver-"));
  const server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  return {
    env: { STORAGE_DRIVER: "s3", S3_BUCKET: bucket, S3_ENDPOINT: endpoint, S3_ACCESS_KEY_ID: "S3RVER", S3_SECRET_ACCESS_KEY: "S3RVER", S3_FORCE_PATH_STYLE: "true" },
    async dump() {
      const parts: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        for (const obj of page.Contents ?? []) {
          const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: obj.Key! }));
          parts.push(obj.Key!, Buffer.from(await got.Body!.transformToByteArray()).toString("latin1"));
        }
        token = page.NextContinuationToken;
      } while (token);
      // And s3rver's own directory: anything it kept beside the objects (metadata, leftovers) is storage too.
      parts.push(await localTree(dir));
      return parts.join("\n");
    },
    async close() {
      client.destroy();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const EMAIL = "Erin.Erased@trace.test";

describe.each([
  ["local", local],
  ["s3", s3],
] as const)("an erased person leaves no trace (%s storage)", (driver, setup) => {
  let storage: StorageSetup;
  let ctx: TestContext;
  let client: Client;
  let workers: WorkerPool;

  beforeAll(async () => {
    storage = await setup();
    ctx = await createTestContext(storage.env);
    client = await createClient(ctx);
    workers = await startTestWorkers(ctx);
  });
  afterAll(async () => {
    await workers?.close();
    await client?.app.close();
    await ctx?.close();
    await storage?.close();
  });

  /** Data only, as text: every row of every table of the test's database. */
  async function pgDump(): Promise<string> {
    const { stdout } = await promisify(execFile)("pg_dump", ["--data-only", "--no-owner", "--dbname", ctx.env.DATABASE_URL], { maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  }

  async function everything(): Promise<{ pg: string; redis: string; storage: string; logs: string }> {
    return { pg: await pgDump(), redis: await dumpRedis(ctx.redis, ctx.env.QUEUE_PREFIX), storage: await storage.dump(ctx), logs: ctx.logs.join("") };
  }

  it("after an import, identify, events, segments, an export and a deletion job, no dump holds the email", async () => {
    expect(ctx.storage.driver).toBe(driver);
    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Traced", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    await waitForComputed(client, seg.json.id);
    // An import that creates the person, with a failed row repeating the email (its cells are kept for the report).
    const done = await importAndWait(client, `email,first_name,plan,signup\n${EMAIL},Erin,pro,2026-01-01\nkeeper@trace.test,Kay,pro,2026-01-01\n${EMAIL},Erin,pro,not-a-date-${EMAIL}\n`, {
      mapping: { signup: "attribute:signup" },
      options: { createSegment: { name: "Import cohort" } },
    });
    expect(done.status).toBe("done");
    // A second import joins the person to a static segment with a value holding the email: the membership, and what
    // the join replaced (kept for an undo of that import), repeat it.
    const joined = await importAndWait(client, `email,seg,val\n${EMAIL},Traced static,${EMAIL}\n`, { mapping: { email: "email", seg: "segment", val: "segment_value" } });
    expect(joined.counts).toMatchObject({ updated: 1 });
    const identified = await client.request("POST", "/v1/users/identify", { payload: { email: EMAIL.toLowerCase(), labels: ["VIP"] }, headers: { "idempotency-key": "trace-1" } });
    expect(identified.status).toBe(200);
    await client.request("POST", "/v1/events", { payload: { events: [{ user: { email: EMAIL }, event: "Paid", properties: { receipt: EMAIL } }] } });
    const exp = await client.request("POST", "/v1/exports", { payload: { kind: "users" } });
    for (let i = 0; i < 200 && (await client.request("GET", `/v1/exports/${exp.json.id}`)).json.status !== "done"; i++) await new Promise((r) => setTimeout(r, 50));

    const before = await everything();
    const needle = EMAIL.toLowerCase();
    // The dumps do see the person before: otherwise the check below would prove nothing.
    expect(before.pg.toLowerCase()).toContain(needle);
    expect(before.storage.toLowerCase()).toContain(needle);

    const del = await client.request("POST", "/v1/deletions", { payload: { users: [{ email: EMAIL }] } });
    expect(del.status).toBe(202);
    for (let i = 0; i < 200 && (await client.request("GET", `/v1/deletions/${del.json.id}`)).json.status !== "done"; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await client.request("GET", `/v1/deletions/${del.json.id}`)).json).toMatchObject({ status: "done", matched: 1, deleted: 1 });

    const after = await everything();
    for (const [where, text] of Object.entries(after)) {
      expect(text.toLowerCase().includes(needle), `${where} still holds the email`).toBe(false);
      expect(text.includes("Erin.Erased"), `${where} still holds the email's local part`).toBe(false);
    }
    // The other person is still there, and the import keeps its counts.
    expect(after.pg).toContain("keeper@trace.test");
    expect((await client.request("GET", `/v1/imports/${done.id}`)).json.counts.created).toBe(2);
  });
});
