import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRetentionSweep, sweepSettings } from "../../src/domain/retention/sweep.js";
import { RETENTION_SWEEP_SCHEDULER_ID, registerSchedules } from "../../src/queue/schedules.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, errorReport, importAndWait, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

const HOUR = 3600 * 1000;
const sweep = (hoursAhead: number) => runRetentionSweep({ db: t.ctx.db, storage: t.ctx.storage, log: t.ctx.logger }, sweepSettings(t.ctx.env), new Date(Date.now() + hoursAhead * HOUR));

async function storageKey(importId: string): Promise<string> {
  const [row] = await t.ctx.db.$client`select storage_key from imports where id = ${importId}`;
  return row!.storage_key as string;
}
const fileExists = (key: string) =>
  t.ctx.storage.size(key).then(
    () => true,
    () => false,
  );

/**
 * A worker deletes an upload right after its import ends (or when its sweep job runs), so a GET may race it.
 * The file goes inside the transaction that marks the import (so a failed delete marks nothing): wait for the mark,
 * committed after the file is gone.
 */
async function waitForUploadExpired(c: Client, importId: string, timeoutMs = 5_000) {
  const until = Date.now() + timeoutMs;
  let got = (await c.request("GET", `/v1/imports/${importId}`)).json;
  while (got.uploadExpiredAt === null && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    got = (await c.request("GET", `/v1/imports/${importId}`)).json;
  }
  return got;
}

describe("retention sweep (clock set forward)", () => {
  it("deletes an ended import's upload after UPLOAD_RETENTION_HOURS; the report keeps row, column, code, message and says the cells expired", async () => {
    const done = await importAndWait(client, "email,first_name,plan\nkeep@ret.test,Kim,pro\nnot-an-email,Secret-Cell-Value,free\n");
    expect(done.status).toBe("done");
    const key = await storageKey(done.id);
    expect(await fileExists(key)).toBe(true);
    const before = await errorReport(client, done.id);
    expect(before[0]).toMatchObject({ row: "2", code: "invalid_email", value: "not-an-email", first_name: "Secret-Cell-Value" });

    // 23 hours on: not yet.
    expect((await sweep(23)).uploadsExpired).toBe(0);
    expect(await fileExists(key)).toBe(true);
    const swept = await sweep(25);
    expect(swept.uploadsExpired).toBe(1);
    expect(await fileExists(key)).toBe(false);

    const after = (await client.request("GET", `/v1/imports/${done.id}`)).json;
    expect(after.uploadExpiredAt).not.toBeNull();
    expect(after.sample).toEqual([]);
    expect(after.counts).toEqual(done.counts);
    expect(after.errors[0]).toMatchObject({ row: 2, code: "invalid_email", value: null });
    const report = await errorReport(client, done.id);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ row: "2", column: before[0]!.column, code: "invalid_email", value: "", first_name: "" });
    expect(report[0]!.message).toBe(`${before[0]!.message} (cells expired with the upload)`);
    const [cells] = await t.ctx.db.$client`select count(*)::int as n from import_errors where import_id = ${done.id} and (record is not null or value is not null)`;
    expect(cells!.n).toBe(0);

    for (const action of ["start", "validate"]) {
      const res = await client.request("POST", `/v1/imports/${done.id}/${action}`);
      expect(res.status).toBe(409);
      expect(res.json.error.code).toBe("upload_expired");
    }
    // Idempotent: a second sweep finds nothing.
    expect((await sweep(25)).uploadsExpired).toBe(0);
  });

  it("a failed import's upload expires too, and it can then no longer be resumed (409 upload_expired)", async () => {
    const done = await importAndWait(client, "email\nfail@ret.test\n");
    await t.ctx.db.$client`update imports set status = 'failed', finished_at = now() - interval '2 days' where id = ${done.id}`;
    expect((await sweep(0)).uploadsExpired).toBe(1);
    expect((await client.request("POST", `/v1/imports/${done.id}/start`)).json.error.code).toBe("upload_expired");
  });

  it("deletes drafts never started after DRAFT_RETENTION_HOURS, with their files; younger drafts stay", async () => {
    const old = await pasteImport(client, "email\nold-draft@ret.test\n");
    const young = await pasteImport(client, "email\nyoung-draft@ret.test\n", { identifier: "email" });
    expect(old.status).toBe(201);
    const oldKey = await storageKey(old.json.id);
    await t.ctx.db.$client`update imports set updated_at = now() - interval '100 hours' where id = ${old.json.id}`;
    expect((await sweep(67)).draftsDeleted).toBe(0);
    const swept = await sweep(69);
    expect(swept.draftsDeleted).toBe(1);
    expect(await fileExists(oldKey)).toBe(false);
    expect((await client.request("GET", `/v1/imports/${old.json.id}`)).status).toBe(404);
    expect((await client.request("GET", `/v1/imports/${young.json.id}`)).status).toBe(200);
    expect(await fileExists(await storageKey(young.json.id))).toBe(true);
  });

  it("deletes a team-member upload as soon as its import ends, whatever the setting", async () => {
    const created = await pasteImport(client, "email,first_name,password\nmember@ret.test,Mo,Hunter2-secret\n", { kind: "members", identifier: "email", start: true });
    expect(created.status).toBe(201);
    const key = await storageKey(created.json.id);
    const done = await waitForImport(client, created.json.id);
    expect(done.status).toBe("done");
    const ended = await waitForUploadExpired(client, created.json.id);
    expect(ended.uploadExpiredAt).not.toBeNull();
    expect(await fileExists(key)).toBe(false);
    // Its cells (passwords redacted) stay for the report until the retention ends, then go like any import's.
    expect(ended.cellsExpiredAt).toBeNull();
    await sweep(25);
    expect((await client.request("GET", `/v1/imports/${created.json.id}`)).json.cellsExpiredAt).not.toBeNull();

    const cancelled = await pasteImport(client, "email,first_name,password\nmember2@ret.test,Mo,Hunter2-secret\n", { kind: "members" });
    const cancelledKey = await storageKey(cancelled.json.id);
    expect((await client.request("POST", `/v1/imports/${cancelled.json.id}/cancel`)).json).toMatchObject({ status: "cancelled" });
    expect(await fileExists(cancelledKey)).toBe(false);
  });

  it("removes idempotency keys after IDEMPOTENCY_KEY_TTL_HOURS and expired exports' files", async () => {
    const res = await client.request("POST", "/v1/users/identify", { payload: { email: "idem@ret.test" }, headers: { "idempotency-key": "ret-key-1" } });
    expect(res.status).toBe(201);
    const exp = await client.request("POST", "/v1/exports", { payload: { kind: "users" } });
    for (let i = 0; i < 200; i++) {
      if ((await client.request("GET", `/v1/exports/${exp.json.id}`)).json.status === "done") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const count = async () => (await t.ctx.db.$client`select count(*)::int as n from idempotency_keys where key = 'ret-key-1'`)[0]!.n;
    expect((await sweep(23)).idempotencyKeysDeleted).toBe(0);
    expect(await count()).toBe(1);
    const swept = await sweep(8 * 24);
    expect(swept.idempotencyKeysDeleted).toBeGreaterThanOrEqual(1);
    expect(swept.exportFilesDeleted).toBe(1);
    expect(await count()).toBe(0);
    expect((await client.request("GET", `/v1/exports/${exp.json.id}`)).json.status).toBe("expired");
  });

  it("treats a validated import idle past DRAFT_RETENTION_HOURS like a draft: deleted whole, with its file", async () => {
    const draft = await pasteImport(client, "email\nvalidated-idle@ret.test\n", { identifier: "email" });
    expect((await client.request("POST", `/v1/imports/${draft.json.id}/validate`)).status).toBe(202);
    expect((await waitForImport(client, draft.json.id)).status).toBe("validated");
    const key = await storageKey(draft.json.id);
    await t.ctx.db.$client`update imports set updated_at = now() - interval '100 hours' where id = ${draft.json.id}`;
    expect((await sweep(67)).draftsDeleted).toBe(0);
    expect((await sweep(69)).draftsDeleted).toBe(1);
    expect(await fileExists(key)).toBe(false);
    expect((await client.request("GET", `/v1/imports/${draft.json.id}`)).status).toBe(404);
  });

  it("runs as the retention.sweep job through a worker", async () => {
    const ended = await importAndWait(client, "email\njob-swept@ret.test\n");
    const key = await storageKey(ended.id);
    await t.ctx.db.$client`update imports set finished_at = now() - interval '2 days' where id = ${ended.id}`;
    expect(await fileExists(key)).toBe(true);
    await t.ctx.producer.enqueue("retention.sweep", {}, { jobId: `sweep-now-${Date.now()}` });
    expect((await waitForUploadExpired(client, ended.id, 15_000)).uploadExpiredAt).not.toBeNull();
    expect(await fileExists(key)).toBe(false);
  });

  it("is registered as one recurring job on the deletions queue (the dashboard shows it)", async () => {
    await registerSchedules(t.ctx.producer, t.ctx.env, t.ctx.logger);
    const schedulers = await t.ctx.producer.queue("deletions").getJobSchedulers();
    expect(schedulers.map((s) => [s.key, s.name, s.every])).toEqual([[RETENTION_SWEEP_SCHEDULER_ID, "retention.sweep", 15 * 60_000]]);
  });
});

describe("UPLOAD_RETENTION_HOURS=0", () => {
  const z = useTestContext({ UPLOAD_RETENTION_HOURS: "0" });
  let zc: Client;
  let zw: WorkerPool;
  beforeAll(async () => {
    zc = await createClient(z.ctx);
    zw = await startTestWorkers(z.ctx);
  });
  afterAll(async () => {
    await zw?.close();
    await zc?.app.close();
  });

  it("deletes a contacts import's upload, sample and cells as soon as the import ends", async () => {
    const done = await importAndWait(zc, "email,first_name\nzero@ret.test,Zed\nnot-an-email,Cell\n");
    expect(done.status).toBe("done");
    const [row] = await z.ctx.db.$client`select storage_key from imports where id = ${done.id}`;
    const key = row!.storage_key as string;
    const after = await waitForUploadExpired(zc, done.id);
    expect(await z.ctx.storage.size(key).then(() => true, () => false)).toBe(false);
    expect(after.uploadExpiredAt).not.toBeNull();
    expect(after.cellsExpiredAt).not.toBeNull();
    expect(after.sample).toEqual([]);
    expect(after.errors[0]).toMatchObject({ row: 2, value: null });
  });
});
