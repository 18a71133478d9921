import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, importAndWait, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
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

  /**
   * Copies an erase cannot edit row by row, each holding `email`: an import sent with an Idempotency-Key (its stored
   * 201 repeats the sample rows), a draft and a validated import (their uploads, samples and, for the dry run, a failed
   * row's cells). Returns how to check, after the erase, that the replay and the imports behave as documented.
   */
  async function copiesOf(email: string, key: string) {
    const csv = `email,first_name,plan\n${email},Copy,pro\n`;
    const keyed = await client.request("POST", "/v1/imports", { payload: { csv, identifier: "email", start: true }, headers: { "idempotency-key": key } });
    expect(keyed.status).toBe(201);
    expect(JSON.stringify(keyed.json.sample)).toContain(email);
    expect((await waitForImport(client, keyed.json.id)).status).toBe("done");
    const draft = await pasteImport(client, `email,first_name\n${email},Draft\n`, { identifier: "email" });
    expect(draft.status).toBe(201);
    const validated = await pasteImport(client, `email,signup\n${email},2026-01-01\n${email},bad-date-${email}\n`, { identifier: "email", mapping: { signup: "attribute:signup" } });
    expect((await client.request("POST", `/v1/imports/${validated.json.id}/validate`)).status).toBe(202);
    expect((await waitForImport(client, validated.json.id)).status).toBe("validated");
    const [stored] = await ctx.db.$client`select response_body::text as body from idempotency_keys where workspace_id = ${client.workspaceId}::uuid and key = ${key}`;
    expect(stored!.body).toContain(email);
    return async function checkAfterErase() {
      // The replay answers with the same import (201, Location), without the erased rows, and creates nothing.
      const [{ n: importsBefore }] = (await ctx.db.$client`select count(*)::int as n from imports where workspace_id = ${client.workspaceId}::uuid`) as unknown as [{ n: number }];
      const replay = await client.request("POST", "/v1/imports", { payload: { csv, identifier: "email", start: true }, headers: { "idempotency-key": key } });
      expect(replay.status).toBe(201);
      expect(replay.headers.location).toBe(`/v1/imports/${keyed.json.id}`);
      expect(replay.json).toMatchObject({ id: keyed.json.id, status: keyed.json.status, sample: [] });
      const [{ n: importsAfter }] = (await ctx.db.$client`select count(*)::int as n from imports where workspace_id = ${client.workspaceId}::uuid`) as unknown as [{ n: number }];
      expect(importsAfter).toBe(importsBefore);
      // The draft and the validated import stay, without their upload: starting or validating them asks for it again.
      for (const id of [draft.json.id, validated.json.id]) {
        const imp = (await client.request("GET", `/v1/imports/${id}`)).json;
        expect(imp).toMatchObject({ sample: [] });
        expect(imp.uploadExpiredAt).not.toBeNull();
        for (const action of ["start", "validate"]) {
          const res = await client.request("POST", `/v1/imports/${id}/${action}`);
          expect(res.status).toBe(409);
          expect(res.json.error.code).toBe("upload_expired");
        }
      }
      const errors = (await client.request("GET", `/v1/imports/${validated.json.id}`)).json.errors;
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e.value).toBeNull();
    };
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

    const checkCopies = await copiesOf(EMAIL, "trace-import-1");

    const before = await everything();
    const needle = EMAIL.toLowerCase();
    // The dumps do see the person before: otherwise the check below would prove nothing.
    expect(before.pg.toLowerCase()).toContain(needle);
    expect(before.storage.toLowerCase()).toContain(needle);

    const del = await client.request("POST", "/v1/deletions", { payload: { users: [{ email: EMAIL }] } });
    expect(del.status).toBe(202);
    for (let i = 0; i < 200 && (await client.request("GET", `/v1/deletions/${del.json.id}`)).json.status !== "done"; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await client.request("GET", `/v1/deletions/${del.json.id}`)).json).toMatchObject({ status: "done", matched: 1, deleted: 1 });

    await checkCopies();
    const after = await everything();
    for (const [where, text] of Object.entries(after)) {
      expect(text.toLowerCase().includes(needle), `${where} still holds the email`).toBe(false);
      expect(text.includes("Erin.Erased"), `${where} still holds the email's local part`).toBe(false);
    }
    // The other person is still there, and the import keeps its counts.
    expect(after.pg).toContain("keeper@trace.test");
    expect((await client.request("GET", `/v1/imports/${done.id}`)).json.counts.created).toBe(2);
  });

  it("DELETE /v1/users/:id leaves no trace either: not in a stored import response, a draft or a validated import", async () => {
    const email = "Dell.Deleted@trace.test";
    const checkCopies = await copiesOf(email, "trace-import-2");
    const [row] = await ctx.db.$client`select id::text from people where workspace_id = ${client.workspaceId}::uuid and email_key = ${email.toLowerCase()}`;
    expect(row).toBeDefined();
    const needle = email.toLowerCase();
    const before = await everything();
    expect(before.pg.toLowerCase()).toContain(needle);
    expect(before.storage.toLowerCase()).toContain(needle);
    // Redis cannot hold it, before or after: jobs carry ids (workspace, import, deletion, subscription), never a
    // person's fields or a file's cells, and nothing else is stored there. The dump is not empty (the jobs above are
    // in it), so the check after the erase reads real data; it proves no erase path puts the email there.
    expect(before.redis).toContain(ctx.env.QUEUE_PREFIX);
    expect(before.redis.toLowerCase()).not.toContain(needle);

    expect((await client.request("DELETE", `/v1/users/${row!.id}`)).status).toBe(204);
    await checkCopies();
    const after = await everything();
    for (const [where, text] of Object.entries(after)) {
      expect(text.toLowerCase().includes(needle), `${where} still holds the email`).toBe(false);
      expect(text.includes("Dell.Deleted"), `${where} still holds the email's local part`).toBe(false);
    }
  });
});
