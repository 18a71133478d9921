import { UnrecoverableError } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { imports } from "../../src/db/schema.js";
import { createParts, enqueueParts, listParts } from "../../src/domain/imports/parts.js";
import { importPartJobId, importRunJobId as importJobId } from "../../src/queue/job-ids.js";
import { JOB_NAMES } from "../../src/queue/jobs.js";
import { EXPORT_CLEANUP_SCHEDULER_ID, registerSchedules } from "../../src/queue/schedules.js";
import { buildReconcileEnded } from "../../src/workers/processors/index.js";
import { reconcileAll } from "../../src/workers/reconciler.js";
import { startWorkers } from "../../src/workers/worker-pool.js";
import { createClient, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";

const t = useTestContext();
let client: Client;
beforeAll(async () => {
  client = await createClient(t.ctx);
});
afterAll(async () => {
  await client?.app.close();
});

const deps = () => ({ db: t.ctx.db, producer: t.ctx.producer, log: t.ctx.logger });
/** The queue of the imports below: their files are a few bytes, so they run in the small-import lane. */
const laneQueue = () => t.ctx.producer.queue("imports-small");

/** A started import whose run was requested `agoMs` ago (older than the reconciler's enqueue grace). */
async function queuedImport(agoMs = 10_000): Promise<{ id: string; queuedAt: Date }> {
  const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: "email\nr@x.io\n", headers: { "content-type": "text/csv" } });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  const [row] = await t.ctx.db.$client`select queued_at from imports where id = ${id}`;
  const queuedAt = new Date(row!.queued_at as string);
  await t.ctx.db.$client`update imports set queued_at = queued_at - make_interval(secs => ${agoMs / 1000}) where id = ${id}`;
  // The job keeps the id derived from the original queued_at; move it to match, as if requested agoMs ago.
  const job = await laneQueue().getJob(importJobId(id, queuedAt));
  await job?.remove();
  return { id, queuedAt: new Date(queuedAt.getTime() - agoMs) };
}

describe("reconciler", () => {
  it("re-enqueues an export Postgres shows queued whose job was lost, under its deterministic job id", async () => {
    const created = await client.request("POST", "/v1/exports", { payload: { kind: "users" } });
    expect(created.status).toBe(202);
    const id = created.json.id as string;
    const queue = t.ctx.producer.queue("exports");
    await (await queue.getJob(`export-${id}`))?.remove();
    await t.ctx.db.$client`update exports set created_at = created_at - interval '10 seconds' where id = ${id}`;
    expect((await reconcileAll(deps())).results.exports).toEqual({ requeued: 1, failed: 0 });
    const job = await queue.getJob(`export-${id}`);
    expect(job?.data).toEqual({ workspaceId: client.workspaceId, exportId: id });
    expect(await job?.getState()).toBe("waiting");
    expect((await reconcileAll(deps())).results.exports).toEqual({ requeued: 0, failed: 0 });
    await job?.remove();
    await t.ctx.db.$client`update exports set status = 'failed' where id = ${id}`;
  });

  it("re-enqueues the recompute of a dynamic segment left computing with no live job", async () => {
    const created = await client.request("POST", "/v1/segments", { payload: { name: "Reconciled", type: "dynamic", conditions: { field: "email", op: "exists" } } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const queue = t.ctx.producer.queue("segments");
    await (await queue.getJob(`segment-recompute-${id}`))?.remove();
    await t.ctx.db.$client`update segments set status = 'computing', updated_at = now() - interval '10 seconds', recompute_requested_at = now() - interval '10 seconds' where id = ${id}`;
    expect((await reconcileAll(deps())).results.segments).toEqual({ requeued: 1, failed: 0 });
    const job = await queue.getJob(`segment-recompute-${id}`);
    expect(job?.data).toEqual({ workspaceId: client.workspaceId, segmentId: id });
    await job?.remove();
    await t.ctx.db.$client`update segments set status = 'ready' where id = ${id}`;
  });

  it("re-enqueues an import Postgres shows queued whose job does not exist, under a new deterministic job id", async () => {
    const { id } = await queuedImport();
    const res = await reconcileAll(deps());
    expect(res).toEqual({ ok: true, results: { imports: { requeued: 1, failed: 0 }, exports: { requeued: 0, failed: 0 }, segments: { requeued: 0, failed: 0 }, deletions: { requeued: 0, failed: 0 }, "import-undos": { requeued: 0, failed: 0 } }, schedulesRestored: [] });
    const [row] = await t.ctx.db.$client`select status, queued_at from imports where id = ${id}`;
    expect(row?.status).toBe("queued");
    const job = await laneQueue().getJob(importJobId(id, new Date(row!.queued_at as string)));
    expect(job?.data).toEqual({ workspaceId: client.workspaceId, importId: id });
    expect(await job?.getState()).toBe("waiting");
    // A second pass finds the live job and leaves it alone.
    expect((await reconcileAll(deps())).results.imports).toEqual({ requeued: 0, failed: 0 });
    await job?.remove();
    await t.ctx.db.$client`update imports set status = 'cancelled' where id = ${id}`;
  });

  it("re-enqueues a lost import in the lane its file's size chose: a big file's on the imports queue, a small one's in the small-import lane", async () => {
    const big = await queuedImport();
    const small = await queuedImport();
    // As if the first file held IMPORT_SMALL_MAX_BYTES and one byte more after its header.
    await t.ctx.db.$client`update imports set stored_bytes = data_offset + ${t.ctx.env.IMPORT_SMALL_MAX_BYTES + 1} where id = ${big.id}`;
    await t.ctx.db.$client`update imports set stored_bytes = data_offset + ${t.ctx.env.IMPORT_SMALL_MAX_BYTES} where id = ${small.id}`;
    expect((await reconcileAll(deps())).results.imports).toEqual({ requeued: 2, failed: 0 });
    const jobOf = async (id: string) => {
      const [row] = await t.ctx.db.$client`select queued_at from imports where id = ${id}`;
      const jobId = importJobId(id, new Date(row!.queued_at as string));
      return { main: await t.ctx.producer.queue("imports").getJob(jobId), lane: await laneQueue().getJob(jobId) };
    };
    const bigJobs = await jobOf(big.id);
    expect(bigJobs.lane).toBeUndefined();
    expect(bigJobs.main).toMatchObject({ name: "import.run", data: { workspaceId: client.workspaceId, importId: big.id } });
    const smallJobs = await jobOf(small.id);
    expect(smallJobs.main).toBeUndefined();
    expect(smallJobs.lane).toMatchObject({ name: "import.small", data: { workspaceId: client.workspaceId, importId: small.id } });
    // Each is found live in its own queue: nothing is queued twice.
    expect((await reconcileAll(deps())).results.imports).toEqual({ requeued: 0, failed: 0 });
    await bigJobs.main?.remove();
    await smallJobs.lane?.remove();
    await t.ctx.db.$client`update imports set status = 'cancelled' where id in (${big.id}, ${small.id})`;
  });

  it("leaves an import requested less than the grace ago alone (its enqueue may be in flight)", async () => {
    const created = await client.request("POST", "/v1/imports?identifier=email", { payload: "email\ng@x.io\n", headers: { "content-type": "text/csv" } });
    await t.ctx.db.$client`update imports set status = 'queued', queued_at = now() where id = ${created.json.id}`;
    expect((await reconcileAll(deps())).results.imports).toEqual({ requeued: 0, failed: 0 });
    await t.ctx.db.$client`update imports set status = 'cancelled' where id = ${created.json.id}`;
  });

  it("marks failed, with BullMQ's reason, an import whose job failed without the worker recording it", async () => {
    const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: "email\nf@x.io\n", headers: { "content-type": "text/csv" } });
    const id = created.json.id as string;
    // A processor that gives up without touching the import (as a worker dying mid-handler would leave it).
    const others = Object.fromEntries(JOB_NAMES.map((n) => [n, async () => {}]));
    const pool = await startWorkers(t.ctx.env, t.ctx.logger, {
      ...others,
      "import.small": async () => {
        throw new UnrecoverableError("simulated unrecoverable failure");
      },
    });
    try {
      const [row] = await t.ctx.db.$client`select queued_at from imports where id = ${id}`;
      const job = await laneQueue().getJob(importJobId(id, new Date(row!.queued_at as string)));
      const until = Date.now() + 10_000;
      while ((await job!.getState()) !== "failed" && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await job!.getState()).toBe("failed");
    } finally {
      await pool.close();
    }
    expect((await t.ctx.db.$client`select status from imports where id = ${id}`)[0]?.status).toBe("queued");
    const res = await reconcileAll({ ...deps(), graceMs: 0 });
    expect(res.results.imports?.failed).toBe(1);
    const [after] = await t.ctx.db.$client`select status, failure_reason from imports where id = ${id}`;
    expect(after).toEqual({ status: "failed", failure_reason: "The import stopped: simulated unrecoverable failure. Start it again to resume." });
  });

  it("marks failed a split import whose part job failed without the worker recording it (not queued again with new attempts)", async () => {
    const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: "email\np@x.io\nq@x.io\n", headers: { "content-type": "text/csv" } });
    const id = created.json.id as string;
    // As the import's run leaves a split import: processing, its parts created and their jobs queued.
    const [imp] = await t.ctx.db.update(imports).set({ status: "processing", startedAt: new Date() }).where(eq(imports.id, id)).returning();
    await createParts(t.ctx.db, imp!, 2);
    await enqueueParts(t.ctx.producer, imp!, await listParts(t.ctx.db, id));
    const others = Object.fromEntries(JOB_NAMES.map((n) => [n, async () => {}]));
    const pool = await startWorkers(t.ctx.env, t.ctx.logger, {
      ...others,
      "import.part": async () => {
        throw new UnrecoverableError("simulated part failure");
      },
    });
    try {
      const jobs = await Promise.all([0, 1].map((p) => t.ctx.producer.queue("imports").getJob(importPartJobId(id, p, imp!.queuedAt!))));
      const until = Date.now() + 10_000;
      while ((await Promise.all(jobs.map((j) => j!.getState()))).some((s) => s !== "failed") && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await Promise.all(jobs.map((j) => j!.getState()))).toEqual(["failed", "failed"]);
    } finally {
      await pool.close();
    }
    const res = await reconcileAll({ ...deps(), graceMs: 0 });
    expect(res.results.imports).toEqual({ requeued: 0, failed: 1 });
    const [after] = await t.ctx.db.$client`select status, failure_reason from imports where id = ${id}`;
    expect(after).toEqual({ status: "failed", failure_reason: "The import stopped: simulated part failure. Start it again to resume." });
  });

  it("a team-member import it fails for good loses its upload at once (passwords must not rest on disk)", async () => {
    const created = await client.request("POST", "/v1/imports", { payload: { csv: "email,first_name,password\nrm@x.io,Mo,Hunter2-secret\n", kind: "members", identifier: "email", start: true } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const [row] = await t.ctx.db.$client`select queued_at, storage_key from imports where id = ${id}`;
    const exists = () => t.ctx.storage.size(row!.storage_key as string).then(() => true, () => false);
    const others = Object.fromEntries(JOB_NAMES.map((n) => [n, async () => {}]));
    const pool = await startWorkers(t.ctx.env, t.ctx.logger, {
      ...others,
      "import.small": async () => {
        throw new UnrecoverableError("simulated unrecoverable failure");
      },
    });
    try {
      const job = await laneQueue().getJob(importJobId(id, new Date(row!.queued_at as string)));
      const until = Date.now() + 10_000;
      while ((await job!.getState()) !== "failed" && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await job!.getState()).toBe("failed");
    } finally {
      await pool.close();
    }
    expect(await exists()).toBe(true);
    const res = await reconcileAll({ ...deps(), graceMs: 0, ended: buildReconcileEnded(t.ctx) });
    expect(res.results.imports?.failed).toBe(1);
    const [after] = await t.ctx.db.$client`select status, upload_expired_at is not null as expired from imports where id = ${id}`;
    expect(after).toEqual({ status: "failed", expired: true });
    expect(await exists()).toBe(false);
  });

  it("re-registers only the recurring jobs Redis lost, leaving a present one's next run alone", async () => {
    const withSchedules = { ...deps(), schedules: t.ctx.env };
    await registerSchedules(t.ctx.producer, t.ctx.env, t.ctx.logger);
    expect((await reconcileAll(withSchedules)).schedulesRestored).toEqual([]);
    const exportsQueue = t.ctx.producer.queue("exports");
    const before = await t.ctx.producer.queue("segments").getJobScheduler("segments-nightly-refresh");
    await exportsQueue.removeJobScheduler(EXPORT_CLEANUP_SCHEDULER_ID);
    expect((await reconcileAll(withSchedules)).schedulesRestored).toEqual([EXPORT_CLEANUP_SCHEDULER_ID]);
    expect(await exportsQueue.getJobScheduler(EXPORT_CLEANUP_SCHEDULER_ID)).toMatchObject({ name: "export.cleanup", every: t.ctx.env.EXPORT_CLEANUP_INTERVAL_MINUTES * 60_000 });
    expect(await t.ctx.producer.queue("segments").getJobScheduler("segments-nightly-refresh")).toEqual(before);
    expect((await reconcileAll(deps())).schedulesRestored).toEqual([]);
    for (const q of ["segments", "exports", "deletions", "webhooks"] as const) for (const s of await t.ctx.producer.queue(q).getJobSchedulers()) await t.ctx.producer.queue(q).removeJobScheduler(s.key);
  });
});
