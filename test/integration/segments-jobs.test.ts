import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recomputeWorkspace } from "../../src/domain/segments/recompute.js";
import { NIGHTLY_REFRESH_SCHEDULER_ID } from "../../src/queue/schedules.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { spawnTs, type Spawned } from "../helpers/processes.js";
import { insertPerson, memberIds, setAttributes, waitForComputed, waitForSegment } from "../helpers/segments.js";

const t = useTestContext({ SEGMENT_REFRESH_CRON: "15 4 * * *", SEGMENT_REFRESH_TZ: "Europe/Paris" });
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

const sorted = (ids: string[]) => [...ids].sort();
const createSegment = async (c: Client, body: object) => {
  const res = await c.request("POST", "/v1/segments", { payload: body });
  if (res.status !== 201) throw new Error(`create segment: ${res.status} ${res.body}`);
  return res.json;
};

describe("recompute triggers", () => {
  it("an import that changed people recomputes the workspace's dynamic segments", async () => {
    const seg = await createSegment(client, { name: "Imported pros", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } });
    const first = await waitForComputed(client, seg.id);
    expect(first.memberCount).toBe(0);
    const csv = "email,plan\nimp1@x.test,pro\nimp2@x.test,free\nimp3@x.test,pro\n";
    const created = await pasteImport(client, csv, { identifier: "email", mapping: { email: "email", plan: "attribute:plan" }, start: true });
    expect(created.status).toBe(201);
    const done = await waitForImport(client, created.json.id);
    expect(done.counts.created).toBe(3);
    const after = await waitForComputed(client, seg.id, first.lastComputedAt);
    expect(after.memberCount).toBe(2);
  });

  it("an import that fills a static segment leaves its member count right", async () => {
    const csv = "User ID,Segment Name,Segment Value\nbeta-1,Beta testers,early\nbeta-2,Beta testers,late\n";
    const created = await pasteImport(client, csv, {
      identifier: "external_id",
      mapping: { "User ID": "external_id", "Segment Name": "segment", "Segment Value": "segment_value" },
      start: true,
    });
    const done = await waitForImport(client, created.json.id);
    expect(done.counts.created).toBe(2);
    const list = await client.request("GET", "/v1/segments?limit=1000");
    const beta = list.json.data.find((s: { name: string }) => s.name === "Beta testers");
    expect(beta.type).toBe("static");
    // Re-counted by the import job right after the import reports done.
    await waitForSegment(client, beta.id, (s) => s.memberCount === 2, 10_000);
    const members = await client.request("GET", `/v1/segments/${beta.id}/members`);
    expect(members.json.data.map((m: { externalId: string; value: string }) => [m.externalId, m.value])).toEqual([["beta-1", "early"], ["beta-2", "late"]]);
  });

  it("an import that changed nobody queues no recompute", async () => {
    // A workspace of its own: the earlier tests' imports queue workspace recomputes that may still run late.
    const ws = await createClient(t.ctx, client.app, "Unchanged import");
    const csv = "email,plan\nimp1@x.test,pro\n";
    const mapping = { email: "email", plan: "attribute:plan" };
    // Written directly, so no import's recompute is in flight when the segment is created.
    await insertPerson(t.ctx, ws.workspaceId, { email: "imp1@x.test", attributes: { plan: "pro" } });
    const seg = await createSegment(ws, { name: "Unchanged import", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } });
    const first = await waitForComputed(ws, seg.id);
    const created = await pasteImport(ws, csv, { identifier: "email", mapping, start: true });
    const done = await waitForImport(ws, created.json.id);
    expect(done.counts).toMatchObject({ created: 0, updated: 0, unchanged: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect((await ws.request("GET", `/v1/segments/${seg.id}`)).json.lastComputedAt).toBe(first.lastComputedAt);
  });
});

describe("workspace recompute", () => {
  it("computes segments after the segments they use, so a chain settles in one pass", async () => {
    const ws = await createClient(t.ctx, client.app, "Chain");
    const p1 = await insertPerson(t.ctx, ws.workspaceId, { email: "c1@x.test", attributes: { level: 1 } });
    const p2 = await insertPerson(t.ctx, ws.workspaceId, { email: "c2@x.test", attributes: { level: 9 } });
    const a = await createSegment(ws, { name: "Chain A", type: "dynamic", conditions: { field: "attributes.level", op: "gte", value: 5 } });
    const b = await createSegment(ws, { name: "Chain B", type: "dynamic", conditions: { segment: a.id, op: "in" } });
    const c = await createSegment(ws, { name: "Chain C", type: "dynamic", conditions: { segment: b.id, op: "in" } });
    const d = await createSegment(ws, { name: "Chain D", type: "dynamic", conditions: { all: [{ segment: c.id, op: "in" }, { segment: a.id, op: "in" }] } });
    for (const s of [a, b, c, d]) await waitForComputed(ws, s.id);
    // Settled state before the change: everyone with level >= 5 (p2) is in the whole chain.
    await waitForComputed(ws, d.id);
    await setAttributes(t.ctx, p1, { level: 7 });
    await setAttributes(t.ctx, p2, { level: 0 });
    const { outcomes, failed } = await recomputeWorkspace(t.ctx.db, ws.workspaceId, t.ctx.logger);
    expect(failed).toEqual([]);
    // (A late cascade request from the creates may add a second pass; the first one is what shows the order.)
    expect(outcomes.slice(0, 4).map((o) => o.segmentId)).toEqual([a.id, b.id, c.id, d.id]);
    for (const s of [a, b, c, d]) expect(await memberIds(ws, s.id), s.name).toEqual([p1]);
  });

  it("the nightly job queues a deduplicated workspace recompute for each workspace with dynamic segments", async () => {
    const ws = await createClient(t.ctx, client.app, "Nightly");
    const person = await insertPerson(t.ctx, ws.workspaceId, { email: "n@x.test", attributes: { night: "no" } });
    const seg = await createSegment(ws, { name: "Night owls", type: "dynamic", conditions: { field: "attributes.night", op: "eq", value: "yes" } });
    const first = await waitForComputed(ws, seg.id);
    await setAttributes(t.ctx, person, { night: "yes" });
    await t.ctx.producer.enqueue("segments.refresh_all", {});
    const after = await waitForComputed(ws, seg.id, first.lastComputedAt);
    expect(after.memberCount).toBe(1);
    expect(sorted(await memberIds(ws, seg.id))).toEqual([person]);
  });
});

describe("nightly refresh scheduler", () => {
  const procs: Spawned[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill()));
  });

  it("two worker processes starting make one schedule with the configured cron and time zone", async () => {
    const env = {
      DATABASE_URL: t.ctx.env.DATABASE_URL,
      REDIS_URL: t.ctx.env.REDIS_URL,
      QUEUE_PREFIX: t.ctx.env.QUEUE_PREFIX,
      STORAGE_DIR: t.ctx.storageDir,
      SEGMENT_REFRESH_CRON: "15 4 * * *",
      SEGMENT_REFRESH_TZ: "Europe/Paris",
      LOG_LEVEL: "info",
    };
    procs.push(spawnTs("src/workers/main.ts", env), spawnTs("src/workers/main.ts", env));
    await Promise.all(procs.map((p) => p.waitFor(/recurring jobs scheduled/, 60_000)));
    // The in-process workers of this file registered it too: three registrations in all.
    const queue = t.ctx.producer.queue("segments");
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers).toHaveLength(1);
    expect(schedulers[0]).toMatchObject({ key: NIGHTLY_REFRESH_SCHEDULER_ID, name: "segments.refresh_all", pattern: "15 4 * * *", tz: "Europe/Paris" });
    const delayed = await queue.getJobs(["delayed", "waiting"]);
    const next = delayed.filter((j) => j?.name === "segments.refresh_all");
    expect(next).toHaveLength(1);
    // 04:15 in Paris is 02:15 or 03:15 UTC depending on the season.
    const at = new Date(next[0]!.timestamp + (next[0]!.opts.delay ?? 0));
    expect([2, 3]).toContain(at.getUTCHours());
    expect(at.getUTCMinutes()).toBe(15);
    for (const p of procs) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited(30_000)));
  });
});
