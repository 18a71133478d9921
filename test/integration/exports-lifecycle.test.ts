import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { loadEnv } from "../../src/config/env.js";
import { createLogger } from "../../src/lib/logger.js";
import { createRuntime } from "../../src/runtime.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { closedPort, withPort } from "../helpers/processes.js";
import { useTestContext } from "../helpers/context.js";
import { csvRows, download, waitForExport } from "../helpers/exports.js";
import { NotFoundError } from "../../src/domain/errors.js";
import { cleanupExpiredExports } from "../../src/domain/exports/cleanup.js";
import { checkExportRequest, createExportSchema } from "../../src/domain/exports/request.js";
import { runExport } from "../../src/domain/exports/run.js";
import { exportConnection } from "../../src/workers/processors/index.js";
import { buildProcessors } from "../../src/workers/processors/index.js";
import { startWorkers } from "../../src/workers/worker-pool.js";
import { EXPORT_CLEANUP_SCHEDULER_ID, registerSchedules } from "../../src/queue/schedules.js";
import { neutraliseCell, neutraliseSql } from "../../src/lib/spreadsheet-safe.js";
import type { Storage } from "../../src/storage/storage.js";

const t = useTestContext();
let a: Client;

/** An export row as POST /v1/exports would record it, without queueing a job: the test runs it by hand. */
async function queuedExport(body: Record<string, unknown>): Promise<string> {
  const params = checkExportRequest(createExportSchema.parse(body), () => null);
  const [row] = await t.ctx.db.$client`
    insert into exports (workspace_id, kind, params) values (${a.workspaceId}, ${body.kind as string}, ${JSON.stringify(params)}::jsonb) returning id`;
  return row!.id as string;
}

async function exportRow(id: string) {
  const [row] = await t.ctx.db.$client`select status, fence::int, storage_key, row_count::int, failure_reason from exports where id = ${id}`;
  return row!;
}

async function exists(storage: Storage, key: string): Promise<boolean> {
  return storage.size(key).then(
    () => true,
    (err: unknown) => {
      if (err instanceof NotFoundError) return false;
      throw err;
    },
  );
}

const deps = () => ({ db: t.ctx.db, storage: t.ctx.storage, log: t.ctx.logger, ttlDays: 7, timeoutMs: 60_000, connect: exportConnection(t.ctx.env) });

beforeAll(async () => {
  a = await createClient(t.ctx);
  await t.ctx.db.$client`insert into people (workspace_id, email) values (${a.workspaceId}, 'ada@example.com'), (${a.workspaceId}, 'bob@example.com')`;
});
afterAll(async () => {
  await a?.app.close();
});

describe("neutraliseSql", () => {
  it("gives what neutraliseCell gives for every kind of value (Postgres text holds no NUL, so that one is JS-only)", async () => {
    const values = ["=1+1", "+44 20", "-Dash", "@x", "\tTab", "\rCR", "\nLF", "-12.5", "+3", "1e3", "-.5", "Ada", "", "'=already", "''+twice", "'quoted", "1-2"];
    for (const v of values) {
      const [row] = await t.ctx.db.$client.unsafe(`select ${neutraliseSql("$1::text")} as v`, [v]);
      expect([v, row!.v]).toEqual([v, neutraliseCell(v)]);
    }
  });
});

describe("request validation", () => {
  it("names an unknown column in a 422", async () => {
    const res = await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email", "favourite_colour"] } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_export");
    expect(res.json.error.message).toContain('Unknown column "favourite_colour"');
    expect(res.json.error.details.problems).toEqual([{ field: "columns.1", reason: expect.stringContaining('"favourite_colour"') }]);
  });

  it("refuses a repeated column, a malformed attribute key, events-only fields and unknown fields", async () => {
    const res = await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email", "email", "attributes.a-b"], from: "2026-01-01T00:00:00Z" } });
    expect(res.status).toBe(422);
    expect(res.json.error.details.problems.map((p: { field: string }) => p.field)).toEqual(["from", "columns.1", "columns.2"]);
    const unknown = await a.request("POST", "/v1/exports", { payload: { kind: "users", format: "xlsx" } });
    expect(unknown.status).toBe(422);
    expect(unknown.json.error.code).toBe("invalid_request");
  });

  it("refuses invalid conditions with 422 invalid_conditions naming the problem, and records nothing", async () => {
    const before = await t.ctx.db.$client`select count(*)::int as n from exports where workspace_id = ${a.workspaceId}`;
    const res = await a.request("POST", "/v1/exports", { payload: { kind: "users", conditions: { all: [{ field: "email", op: "sounds_like", value: "x" }] } } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_conditions");
    expect(res.json.error.details.problems[0].path).toBe("all.0.op");
    const after = await t.ctx.db.$client`select count(*)::int as n from exports where workspace_id = ${a.workspaceId}`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });
});

describe("fencing", () => {
  it("a second run of a finished export changes nothing", async () => {
    const id = await queuedExport({ kind: "users", columns: ["email"] });
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id })).toBe("done");
    const first = await exportRow(id);
    expect(first).toMatchObject({ status: "done", fence: 1, row_count: 2 });
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id })).toBe("not_runnable");
    expect(await exportRow(id)).toEqual(first);
  });

  it("a run that lost its fence to a newer run discards its file and publishes nothing", async () => {
    const id = await queuedExport({ kind: "users", columns: ["email"] });
    let staleKey = "";
    // While the first run writes, a second worker takes the export (as after a stalled lock).
    const racing: Storage = Object.assign(Object.create(t.ctx.storage) as Storage, {
      write: async (key: string, body: NodeJS.ReadableStream, opts?: { maxBytes?: number; contentType?: string }) => {
        staleKey = key;
        await t.ctx.db.$client`update exports set fence = fence + 1 where id = ${id}`;
        return t.ctx.storage.write(key, body, opts);
      },
    });
    expect(await runExport({ ...deps(), storage: racing }, { workspaceId: a.workspaceId, exportId: id })).toBe("fence_lost");
    expect(await exportRow(id)).toMatchObject({ status: "processing", fence: 2, storage_key: null, row_count: null });
    expect(await exists(t.ctx.storage, staleKey)).toBe(false);
    // The newer run (still entitled: the export is processing) finishes it.
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id })).toBe("done");
    const row = await exportRow(id);
    expect(row).toMatchObject({ status: "done", fence: 3 });
    expect(row.storage_key).not.toBe(staleKey);
  });

  it("a run interrupted by shutdown publishes nothing and leaves the export for the next run", async () => {
    const id = await queuedExport({ kind: "users", columns: ["email"] });
    const stop = new AbortController();
    stop.abort();
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id }, stop.signal)).toBe("interrupted");
    expect(await exportRow(id)).toMatchObject({ status: "processing", fence: 1, storage_key: null });
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id })).toBe("done");
    expect(await exportRow(id)).toMatchObject({ status: "done", fence: 2, row_count: 2 });
  });

  it("a storage failure mid-stream publishes nothing, and the connection pool stays usable for the retry", async () => {
    const ws = await createClient(t.ctx, a.app, "Big");
    await t.ctx.db.$client`insert into people (workspace_id, email, first_name) select ${ws.workspaceId}, 'p' || g || '@example.com', repeat('x', 500) from generate_series(1, 40000) g`;
    const params = checkExportRequest(createExportSchema.parse({ kind: "users" }), () => null);
    const [row] = await t.ctx.db.$client`insert into exports (workspace_id, kind, params) values (${ws.workspaceId}, 'users', ${JSON.stringify(params)}::jsonb) returning id`;
    const id = row!.id as string;
    const failing: Storage = Object.assign(Object.create(t.ctx.storage) as Storage, {
      write: async (_key: string, body: NodeJS.ReadableStream) => {
        for await (const chunk of body) {
          void chunk;
          throw new Error("disk full");
        }
        return { sizeBytes: 0 };
      },
    });
    await expect(runExport({ ...deps(), storage: failing }, { workspaceId: ws.workspaceId, exportId: id })).rejects.toThrow("disk full");
    expect(await exportRow(id)).toMatchObject({ status: "processing", storage_key: null });
    expect(await runExport(deps(), { workspaceId: ws.workspaceId, exportId: id })).toBe("done");
    expect(await exportRow(id)).toMatchObject({ status: "done", row_count: 40000 });
    // The failed run's backend was terminated, not left blocked sending the rest of the COPY (holding its snapshot).
    const until = Date.now() + 10_000;
    let left = -1;
    while (left !== 0 && Date.now() < until) {
      [{ n: left }] = (await t.ctx.db.$client`select count(*)::int as n from pg_stat_activity where application_name = 'roster-export' and datname = current_database()`) as unknown as [{ n: number }];
      if (left !== 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(left).toBe(0);
  });

  it("a run stopped while its query waits leaves no connection behind and no error loose in the process", async () => {
    // The run's own connection is closed before its backend is terminated. The other order made postgres.js send the
    // transaction's ROLLBACK to a connection the server had just closed: a write to a null socket thrown from a timer
    // (porsager/postgres#1208) that kills the worker, or, once it reconnected, a handshake destroyed mid-way (an
    // unhandled rejection).
    const loose: unknown[] = [];
    const onLoose = (err: unknown) => loose.push(err);
    process.on("unhandledRejection", onLoose);
    process.on("uncaughtException", onLoose);
    const holder = await t.ctx.db.$client.reserve();
    try {
      for (let i = 0; i < 20; i++) {
        const id = await queuedExport({ kind: "users", columns: ["email"] });
        await holder`begin`;
        await holder`lock table people in access exclusive mode`;
        const stop = new AbortController();
        const running = runExport(deps(), { workspaceId: a.workspaceId, exportId: id }, stop.signal);
        const until = Date.now() + 10_000;
        let waiting = 0;
        while (waiting === 0 && Date.now() < until) {
          [{ n: waiting }] = (await t.ctx.db.$client`select count(*)::int as n from pg_stat_activity where application_name = 'roster-export' and datname = current_database() and wait_event_type = 'Lock'`) as unknown as [{ n: number }];
          if (waiting === 0) await new Promise((r) => setTimeout(r, 20));
        }
        expect(waiting).toBe(1);
        stop.abort();
        expect(await running).toBe("interrupted");
        await holder`rollback`;
      }
      await new Promise((r) => setTimeout(r, 300));
      const [{ n }] = (await t.ctx.db.$client`select count(*)::int as n from pg_stat_activity where application_name = 'roster-export' and datname = current_database()`) as unknown as [{ n: number }];
      expect(n).toBe(0);
      expect(loose).toEqual([]);
    } finally {
      await holder`rollback`.catch(() => {});
      holder.release();
      process.off("unhandledRejection", onLoose);
      process.off("uncaughtException", onLoose);
    }
  });

  it("an export whose segment was deleted fails with the reason, and its download says so", async () => {
    const id = await queuedExport({ kind: "users", segmentId: randomUUID() });
    expect(await runExport(deps(), { workspaceId: a.workspaceId, exportId: id })).toBe("failed");
    expect(await exportRow(id)).toMatchObject({ status: "failed", failure_reason: "The segment it was limited to was deleted." });
    const dl = await download(a, id);
    expect(dl.status).toBe(409);
    expect(JSON.parse(dl.text).error.code).toBe("export_failed");
  });

  it("a download before the export is done answers 409 export_not_ready", async () => {
    const id = await queuedExport({ kind: "users" });
    const dl = await download(a, id);
    expect(dl.status).toBe(409);
    expect(JSON.parse(dl.text).error).toMatchObject({ code: "export_not_ready", message: "The export is queued; download it once its status is done." });
  });
});

describe("API", () => {
  it("replays the original response for a repeated Idempotency-Key and refuses it for another body", async () => {
    const headers = { "idempotency-key": `exp-${randomUUID()}` };
    const first = await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"] }, headers });
    const again = await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"] }, headers });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(again.headers.location).toBe(`/v1/exports/${first.json.id}`);
    expect(await t.ctx.db.$client`select 1 from exports where workspace_id = ${a.workspaceId} and params->'columns' = '["email"]'::jsonb and status = 'queued'`).toHaveLength(1);
    const other = await a.request("POST", "/v1/exports", { payload: { kind: "events" }, headers });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe("idempotency_key_reused");
  });

  it("lists exports newest first with keyset pagination", async () => {
    const b = await createClient(t.ctx, a.app, "Lister");
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await b.request("POST", "/v1/exports", { payload: { kind: "users" } })).json.id);
    const page1 = await b.request("GET", "/v1/exports?limit=2");
    expect(page1.status).toBe(200);
    expect(page1.json.data.map((e: { id: string }) => e.id)).toEqual([made[2], made[1]]);
    expect(page1.json.data[0]).toMatchObject({ kind: "users", status: "queued", rowCount: null, sizeBytes: null });
    const page2 = await b.request("GET", `/v1/exports?limit=2&cursor=${page1.json.nextCursor}`);
    expect(page2.json).toEqual({ data: [expect.objectContaining({ id: made[0] })], nextCursor: null });
    expect((await b.request("GET", "/v1/exports?cursor=nonsense")).json.error.code).toBe("invalid_cursor");
    expect((await b.request("GET", "/v1/exports?status=done")).json).toEqual({ data: [], nextCursor: null });
    expect((await b.request("GET", "/v1/exports?status=queued&limit=1000")).json.data).toHaveLength(3);
    expect((await b.request("GET", "/v1/exports?status=nope")).status).toBe(422);
  });
});

describe("export.run job", () => {
  it("marks the export failed with the last error once the job is out of attempts", async () => {
    const id = await queuedExport({ kind: "users", columns: ["email"] });
    const broken: Storage = Object.assign(Object.create(t.ctx.storage) as Storage, {
      write: async () => {
        throw new Error("bucket unreachable");
      },
    });
    const pool = await startWorkers(t.ctx.env, t.ctx.logger, buildProcessors({ ...t.ctx, storage: broken }), { queues: ["exports"] });
    try {
      await t.ctx.producer.queue("exports").add("export.run", { workspaceId: a.workspaceId, exportId: id }, { jobId: `export-${id}`, attempts: 1 });
      const until = Date.now() + 20_000;
      while ((await exportRow(id)).status !== "failed" && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await exportRow(id)).toMatchObject({ status: "failed", failure_reason: "The export stopped after 1 attempts: bucket unreachable", storage_key: null });
    } finally {
      await pool.close();
    }
  });
});

describe("with Redis down", () => {
  it("POST /v1/exports answers 503 queue_unavailable and leaves no export behind", async () => {
    const e = t.ctx.env;
    const env = loadEnv({ DATABASE_URL: e.DATABASE_URL, REDIS_URL: withPort(e.REDIS_URL, await closedPort()), QUEUE_PREFIX: e.QUEUE_PREFIX, STORAGE_DIR: e.STORAGE_DIR, LOG_LEVEL: "silent" });
    const rt = await createRuntime(env, createLogger(env), { migrate: false });
    const app = await buildApp(rt);
    try {
      const c = await createClient(t.ctx, app, "NoQueue");
      const res = await c.request("POST", "/v1/exports", { payload: { kind: "users" }, headers: { "idempotency-key": "k1" } });
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe("queue_unavailable");
      expect(await t.ctx.db.$client`select 1 from exports where workspace_id = ${c.workspaceId}`).toHaveLength(0);
      // The key was released: the client may retry with it once the queue is back.
      expect(await t.ctx.db.$client`select 1 from idempotency_keys where workspace_id = ${c.workspaceId}`).toHaveLength(0);
    } finally {
      await app.close();
      await rt.close();
    }
  });
});

describe("expiry", () => {
  it("the scheduled cleanup job deletes expired files, marks them expired, and leaves live ones alone", async () => {
    const workers = await startTestWorkers(t.ctx);
    try {
      // Registering again (another worker starting) keeps one scheduler.
      await registerSchedules(t.ctx.producer, t.ctx.env, t.ctx.logger);
      const schedulers = await t.ctx.producer.queue("exports").getJobSchedulers();
      expect(schedulers.map((s) => [s.key, s.name, s.every])).toEqual([[EXPORT_CLEANUP_SCHEDULER_ID, "export.cleanup", 60 * 60_000]]);

      const oldId = (await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"] } })).json.id;
      const liveId = (await a.request("POST", "/v1/exports", { payload: { kind: "users", columns: ["email"] } })).json.id;
      await waitForExport(a, oldId);
      await waitForExport(a, liveId);
      const [{ storage_key: oldKey }] = (await t.ctx.db.$client`select storage_key from exports where id = ${oldId}`) as unknown as [{ storage_key: string }];
      expect(await exists(t.ctx.storage, oldKey)).toBe(true);

      await t.ctx.db.$client`update exports set expires_at = now() - interval '1 minute' where id = ${oldId}`;
      // Past its expiry the file is no longer served, even before the cleanup ran.
      const early = await download(a, oldId);
      expect(early.status).toBe(409);
      expect(JSON.parse(early.text).error.code).toBe("export_expired");

      await t.ctx.producer.enqueue("export.cleanup", {}, { jobId: `cleanup-${randomUUID()}` });
      const until = Date.now() + 20_000;
      while ((await exportRow(oldId)).storage_key !== null && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await exportRow(oldId)).toMatchObject({ status: "expired", storage_key: null });
      expect(await exists(t.ctx.storage, oldKey)).toBe(false);
      const view = await a.request("GET", `/v1/exports/${oldId}`);
      expect(view.json.status).toBe("expired");
      const dl = await download(a, oldId);
      expect(dl.status).toBe(409);
      expect(JSON.parse(dl.text).error.code).toBe("export_expired");

      expect((await exportRow(liveId)).status).toBe("done");
      expect(csvRows((await download(a, liveId)).text)).toHaveLength(3);
      // Idempotent: nothing left to delete.
      expect(await cleanupExpiredExports({ db: t.ctx.db, storage: t.ctx.storage, log: t.ctx.logger })).toEqual({ deleted: 0 });
    } finally {
      await workers.close();
    }
  });

  it("finishes a cleanup that stopped between marking an export expired and deleting its file", async () => {
    const id = await queuedExport({ kind: "users", columns: ["email"] });
    await runExport(deps(), { workspaceId: a.workspaceId, exportId: id });
    const { storage_key: key } = await exportRow(id);
    await t.ctx.db.$client`update exports set status = 'expired', expires_at = now() - interval '1 day' where id = ${id}`;
    const res = await cleanupExpiredExports({ db: t.ctx.db, storage: t.ctx.storage, log: t.ctx.logger });
    expect(res.deleted).toBeGreaterThanOrEqual(1);
    expect(await exists(t.ctx.storage, key as string)).toBe(false);
    expect(await exportRow(id)).toMatchObject({ status: "expired", storage_key: null });
  });
});
