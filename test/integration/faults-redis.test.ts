import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClient, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { ENQUEUE_GRACE_MS } from "../../src/workers/reconciler.js";
import { EXPORT_CLEANUP_SCHEDULER_ID, NIGHTLY_REFRESH_SCHEDULER_ID, RETENTION_SWEEP_SCHEDULER_ID, WEBHOOK_SWEEP_SCHEDULER_ID } from "../../src/queue/schedules.js";
import type { QueueName } from "../../src/queue/jobs.js";
import { contactsCsv, expectExactlyOnce, holdAtProcessed, importState, privateRedis, spawnWorker, waitForProcessed, waitUntilIdleFor, type PrivateRedis } from "../helpers/faults.js";
import { closedPort, type Spawned } from "../helpers/processes.js";

// Every test here stops, restarts or pauses Redis: a redis-server of this file's own, never the shared one.
let redis: PrivateRedis;
const overrides: Record<string, string> = {};
beforeAll(async () => {
  redis = privateRedis(await closedPort());
  await redis.start();
  overrides.REDIS_URL = redis.url;
});
afterAll(async () => {
  await redis?.kill();
});
const t = useTestContext(overrides);

let spawned: Spawned[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(spawned.map((s) => s.kill()));
  spawned = [];
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.app.close()));
});

function worker(env: Record<string, string> = {}): Spawned {
  const w = spawnWorker(t.ctx, env);
  spawned.push(w);
  return w;
}

async function newClient(name: string): Promise<Client> {
  const c = await createClient(t.ctx, undefined, name);
  clients.push(c);
  return c;
}

async function startImport(client: Client, csv: string): Promise<string> {
  const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
  expect(created.status, created.body).toBe(201);
  return created.json.id as string;
}

async function restartRedisEmpty(): Promise<void> {
  await redis.kill();
  await redis.start();
}

describe("Redis restarted empty mid-import", () => {
  it("a running worker's periodic reconciler re-enqueues the import whose queued job was lost; both imports end exact", async () => {
    const a = await newClient("RestartA");
    const b = await newClient("RestartB");
    // One import at a time: both files are small, so both run in the small-import lane, whose one slot A holds; B waits
    // in the lane's queue behind A, so its job exists only in Redis when Redis is lost.
    const w = worker({ IMPORT_CONCURRENCY: "1", IMPORT_SMALL_CONCURRENCY: "1", RECONCILE_INTERVAL_MS: "1000" });
    await w.waitFor(/workers started/, 30_000);
    const idA = await startImport(a, contactsCsv(20_000, "a"));
    await waitForProcessed(t.ctx, idA, 2_000);
    const idB = await startImport(b, contactsCsv(3_000, "b"));
    expect((await importState(t.ctx, idB)).status).toBe("queued");

    await restartRedisEmpty();
    const doneB = await waitForImport(b, idB, 60_000);
    expect(doneB.status).toBe("done");
    expect(w.stdout()).toContain("import had no live job; re-enqueued");
    await expectExactlyOnce(t.ctx, b, idB, 3_000);
    expect((await waitForImport(a, idA, 60_000)).status).toBe("done");
    await expectExactlyOnce(t.ctx, a, idA, 20_000);
  }, 120_000);

  it("after a crash of worker and Redis together, a new worker's start pass re-enqueues the processing import; it resumes to an exact result", async () => {
    const client = await newClient("Crash");
    const id = await startImport(client, contactsCsv(20_000, "c"));
    const first = worker({ RECONCILE_INTERVAL_MS: "0" });
    await first.waitFor(/workers started/, 30_000);
    const hold = await holdAtProcessed(t.ctx, id, 3_000);
    first.child.kill("SIGKILL");
    await first.exited(10_000);
    await hold.release();
    await restartRedisEmpty();
    const atCrash = await importState(t.ctx, id);
    expect(atCrash.status).toBe("processing");
    // The start pass leaves alone an import updated within ENQUEUE_GRACE_MS (its job may be on its way); a crash right
    // after a batch and a quick restart fall inside that window, where only a periodic pass would find the import.
    // This test is about the start pass: start the new worker once the window has passed.
    await waitUntilIdleFor(t.ctx, id, ENQUEUE_GRACE_MS);

    const second = worker({ RECONCILE_INTERVAL_MS: "0" });
    const done = await waitForImport(client, id, 90_000);
    expect(done.status, String(done.failureReason)).toBe("done");
    expect(second.stdout()).toContain("import had no live job; re-enqueued");
    await expectExactlyOnce(t.ctx, client, id, 20_000);
    const [row] = await t.ctx.db.$client`select attempts from imports where id = ${id}`;
    expect(row?.attempts).toBe(2);
  }, 120_000);
});

describe("Redis emptied under a running worker", () => {
  const schedulers: [QueueName, string][] = [
    ["segments", NIGHTLY_REFRESH_SCHEDULER_ID],
    ["exports", EXPORT_CLEANUP_SCHEDULER_ID],
    ["deletions", RETENTION_SWEEP_SCHEDULER_ID],
    ["webhooks", WEBHOOK_SWEEP_SCHEDULER_ID],
  ];
  const present = async () => {
    const found = await Promise.all(schedulers.map(([q, id]) => t.ctx.producer.queue(q).getJobScheduler(id).catch(() => undefined)));
    return schedulers.filter((_, i) => found[i]).map(([, id]) => id);
  };
  async function waitForSchedulers(timeoutMs: number): Promise<void> {
    for (const until = Date.now() + timeoutMs; ; ) {
      const ids = await present();
      if (ids.length === schedulers.length) return;
      if (Date.now() > until) throw new Error(`only ${JSON.stringify(ids)} of the recurring jobs were back after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it.each([
    ["FLUSHALL", () => t.ctx.redis.flushall().then(() => undefined)],
    ["a restart with no persistence", restartRedisEmpty],
  ])("after %s the periodic reconciler re-registers the nightly refresh, export cleanup, retention sweep and webhook sweep", async (_how, empty) => {
    const w = worker({ RECONCILE_INTERVAL_MS: "500" });
    // Its start registration done (it follows "workers started"), so what brings the schedules back below is the reconciler.
    await w.waitFor(/recurring jobs scheduled/, 30_000);
    await waitForSchedulers(10_000);

    await empty();
    // Nothing but the reconciler registers them again: registerSchedules runs once, at start.
    await waitForSchedulers(10_000);
    // The line reaches this process through a pipe, possibly just after the upserts themselves.
    await w.waitFor(/recurring job was missing from Redis; re-registered/, 5_000);
  }, 60_000);
});

describe("Redis paused (SIGSTOP) longer than the job lock while a worker writes", () => {
  it("a second worker takes the job over; the fence stops the first; the result equals a single run", async () => {
    const client = await newClient("Paused");
    // Enough batches that the first worker is still writing when Redis wakes (the import got faster: 40,000 rows in
    // batches of 500 could finish inside the 7 s pause, and then no takeover happens).
    const rows = 60_000;
    const id = await startImport(client, contactsCsv(rows, "p"));
    // This test is about the takeover and the fence, not the stall limit: on a loaded machine a 3 s lock can be seen
    // stalled a few times more than on an idle one, so the limit is set out of the way.
    const env = { IMPORT_BATCH_SIZE: "400", RECONCILE_INTERVAL_MS: "0", WORKER_MAX_STALLED_COUNT: "50" };
    const first = worker(env);
    await first.waitFor(/workers started/, 30_000);
    // Held mid-import while the second worker starts (its start took long enough, on a loaded machine, for the first
    // to finish all 60,000 rows before Redis was frozen, and then no takeover happens): its next batch waits on this lock.
    const starting = await holdAtProcessed(t.ctx, id, 2_000);
    const second = worker(env);
    await second.waitFor(/workers started/, 30_000);

    redis.process().kill("SIGSTOP");
    const pausedAt = Date.now();
    const processedAtPause = (await importState(t.ctx, id)).processed;
    expect(processedAtPause).toBeLessThan(rows);
    await starting.release();
    // The first worker keeps committing batches to Postgres while Redis is frozen.
    await waitForProcessed(t.ctx, id, processedAtPause + 1, 30_000);
    // Caught mid-import whatever its speed: its next checkpoint waits on this row lock.
    const hold = await holdAtProcessed(t.ctx, id, processedAtPause + 1);
    // The freeze must outlast the job lock (WORKER_LOCK_MS, 3 s in spawnWorker) so the job counts as stalled.
    const lockMs = 3_000;
    await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + 2 * lockMs - Date.now())));
    redis.process().kill("SIGCONT");
    // The second worker takes the job over; its claim of the import waits on the same row lock as the first worker.
    for (const until = Date.now() + 30_000; ; ) {
      const [w] = await t.ctx.db.$client`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
      if ((w?.n ?? 0) >= 2) break;
      if (Date.now() > until) throw new Error("the second worker never tried to claim the import");
      await new Promise((r) => setTimeout(r, 50));
    }
    await hold.release();

    const done = await waitForImport(client, id, 90_000);
    expect(done.status, String(done.failureReason)).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, rows);
    const [row] = await t.ctx.db.$client`select attempts from imports where id = ${id}`;
    // At least one takeover (the frozen lock can be seen as stalled by both workers in turn): each took a new fence.
    expect(row?.attempts).toBeGreaterThanOrEqual(2);
    expect(first.stdout() + second.stdout()).toContain("another run took this import over; stopping");
  }, 150_000);
});

describe("the API with Redis paused (SIGSTOP)", () => {
  it("answers 503 within 2 s and the import stays draft, even when the job lands once Redis resumes", async () => {
    const client = await newClient("Frozen");
    const draft = await client.request("POST", "/v1/imports?identifier=email", { payload: contactsCsv(10, "f"), headers: { "content-type": "text/csv" } });
    expect(draft.status).toBe(201);
    redis.process().kill("SIGSTOP");
    let res;
    const began = Date.now();
    try {
      res = await client.request("POST", `/v1/imports/${draft.json.id}/start`);
    } finally {
      redis.process().kill("SIGCONT");
    }
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(res.status).toBe(503);
    expect(res.json.error.code).toBe("queue_unavailable");
    // A job that reached Redis anyway finds a draft import and does nothing: the import only says queued with a job.
    const w = worker({ RECONCILE_INTERVAL_MS: "0" });
    await w.waitFor(/workers started/, 30_000);
    // Whether or not the job reached Redis, the worker drains the queues; only then is "nothing happened" a fact.
    for (const name of ["imports", "imports-small"] as const) {
      const queue = t.ctx.producer.queue(name);
      for (const until = Date.now() + 30_000; ; ) {
        const counts = await queue.getJobCounts("wait", "active", "delayed", "prioritized");
        if (Object.values(counts).every((n) => n === 0)) break;
        if (Date.now() > until) throw new Error(`the ${name} queue did not drain: ${JSON.stringify(counts)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(await importState(t.ctx, draft.json.id)).toMatchObject({ status: "draft", processed: 0 });
  }, 60_000);
});

describe("the API with Redis down", () => {
  it("answers 503 queue_unavailable within 2 s to start=true and to /start; start=true leaves no orphan draft or upload behind", async () => {
    const client = await newClient("Down");
    const draft = await client.request("POST", "/v1/imports?identifier=email", { payload: contactsCsv(10, "x"), headers: { "content-type": "text/csv" } });
    expect(draft.status).toBe(201);
    await redis.kill();

    let began = Date.now();
    const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(10, "y"), headers: { "content-type": "text/csv" } });
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(created.status).toBe(503);
    expect(created.json.error.code).toBe("queue_unavailable");

    began = Date.now();
    const started = await client.request("POST", `/v1/imports/${draft.json.id}/start`);
    expect(Date.now() - began).toBeLessThan(2_000);
    expect(started.status).toBe(503);
    expect(started.json.error.code).toBe("queue_unavailable");

    // Only the draft the client knows of: the start=true import it was never told about is gone, file and all.
    const rows = await t.ctx.db.$client`select id, status, storage_key from imports where workspace_id = ${client.workspaceId}`;
    expect(rows.map((r) => ({ id: r.id, status: r.status }))).toEqual([{ id: draft.json.id, status: "draft" }]);
    expect(await readdir(path.join(t.ctx.storageDir, "uploads", client.workspaceId))).toEqual([path.basename(String(rows[0]?.storage_key))]);
    await redis.start();
  }, 30_000);
});
