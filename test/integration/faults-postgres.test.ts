import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createClient, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { contactsCsv, expectExactlyOnce, importState, spawnWorker, waitForProcessed } from "../helpers/faults.js";
import type { Spawned } from "../helpers/processes.js";

// Faults are injected only on this file's own database (filtered by datname); the server is never restarted.
const t = useTestContext();
let spawned: Spawned[] = [];
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(spawned.map((s) => s.kill()));
  spawned = [];
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.app.close()));
});

const ROWS = 20_000;

async function begin(name: string, env: Record<string, string>): Promise<{ client: Client; id: string; w: Spawned }> {
  const client = await createClient(t.ctx, undefined, name);
  clients.push(client);
  const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(ROWS, name), headers: { "content-type": "text/csv" } });
  expect(created.status).toBe(201);
  const id = created.json.id as string;
  const w = spawnWorker(t.ctx, env);
  spawned.push(w);
  await w.waitFor(/workers started/, 30_000);
  await waitForProcessed(t.ctx, id, 2_000);
  return { client, id, w };
}

async function attempts(id: string): Promise<number> {
  const [row] = await t.ctx.db.$client`select attempts from imports where id = ${id}`;
  return Number(row?.attempts);
}

/** Holds the import's row lock (as a stuck transaction elsewhere would) for `ms`, so the worker's next batch waits on it. */
async function holdImportLock(id: string, ms: number): Promise<void> {
  const conn = await t.ctx.db.$client.reserve();
  try {
    await conn.unsafe("begin");
    await conn`select id from imports where id = ${id} for update`;
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    await conn.unsafe("rollback");
    conn.release();
  }
}

describe("a PostgreSQL backend terminated mid-batch", () => {
  it("the batch rolls back, the run is retried from the checkpoint and the worker's pool recovers: exact result", async () => {
    // A connection killed between two statements of a batch leaves postgres.js's next query unsettled forever: the
    // client-side batch bound is what ends that batch.
    const { client, id, w } = await begin("term", { IMPORT_BATCH_TIMEOUT_MS: "3000" });
    // The worker's connection while it runs a statement of a batch transaction (this file's database only, never this
    // test's own session). A connection killed while idle between two statements is not covered: postgres.js then
    // either never settles the next query (the batch bound ends it) or throws on its null socket (see the report).
    let killed = 0;
    const until = Date.now() + 20_000;
    while (killed === 0 && Date.now() < until) {
      const rows = await t.ctx.db.$client`
        select pg_terminate_backend(pid) as ok from pg_stat_activity
        where datname = ${t.ctx.dbName} and pid <> pg_backend_pid() and state = 'active' and xact_start is not null
          and query not ilike '%pg_stat_activity%'`;
      killed = rows.filter((r) => r.ok).length;
      if (!killed) await new Promise((r) => setTimeout(r, 10));
    }
    expect(killed).toBeGreaterThan(0);
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, ROWS);
    expect(await attempts(id)).toBeGreaterThanOrEqual(2);
    expect(w.stdout()).toMatch(/terminating connection due to administrator command|CONNECTION_CLOSED|ECONNRESET|The batch did not finish within 3000 ms/);
    expect(w.child.exitCode).toBeNull();
    expect(w.stdout()).not.toContain("worker shutting down after an error");
  }, 120_000);
});

describe("a database call that never returns", () => {
  it("statement_timeout ends the batch waiting on a lock; the run is retried and finishes exactly once the lock goes", async () => {
    const { client, id, w } = await begin("stmt", { DB_STATEMENT_TIMEOUT_MS: "1500" });
    const before = await importState(t.ctx, id);
    await holdImportLock(id, 4_000);
    expect(w.stdout()).toMatch(/canceling statement due to statement timeout/);
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    expect(before.processed).toBeLessThan(ROWS);
    await expectExactlyOnce(t.ctx, client, id, ROWS);
    expect(await attempts(id)).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it("with no server-side bound, the client-side batch bound terminates the stuck connection; the run is retried and finishes exactly", async () => {
    // 3 s: a healthy 1,000-row batch on a machine loaded by other suites took over 1.5 s, so every retry hit the bound.
    const { client, id, w } = await begin("bound", { DB_STATEMENT_TIMEOUT_MS: "120000", IMPORT_BATCH_TIMEOUT_MS: "3000" });
    await holdImportLock(id, 6_000);
    expect(w.stdout()).toContain("import batch did not finish in time; terminating its connection");
    expect(w.stdout()).toContain("The batch did not finish within 3000 ms.");
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, ROWS);
    expect(await attempts(id)).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
