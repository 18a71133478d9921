import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { spawnTs, type Spawned } from "../helpers/processes.js";

const t = useTestContext();
let client: Client;
const spawned: Spawned[] = [];

beforeAll(async () => {
  client = await createClient(t.ctx);
});
afterAll(async () => {
  await Promise.all(spawned.map((s) => s.kill()));
  await client?.app.close();
});

const ROWS = 30_000;

/** A worker as production runs it: its own process, the test's database, queue prefix and storage. */
function startWorkerProcess(): Spawned {
  const env = t.ctx.env;
  const w = spawnTs("src/workers/main.ts", {
    DATABASE_URL: env.DATABASE_URL,
    REDIS_URL: env.REDIS_URL,
    QUEUE_PREFIX: env.QUEUE_PREFIX,
    STORAGE_DIR: env.STORAGE_DIR,
    IMPORT_BATCH_SIZE: "1000",
    // Every run parses on a parse thread (a file this small would otherwise parse on the run's thread).
    IMPORT_PARSE_THREAD_MIN_BYTES: "0",
    WORKER_LOCK_MS: "3000",
    LOG_LEVEL: "info",
  });
  spawned.push(w);
  return w;
}

async function processed(id: string): Promise<{ status: string; processed: number }> {
  const [row] = await t.ctx.db.$client`select status, processed from imports where id = ${id}`;
  return { status: String(row?.status), processed: Number(row?.processed) };
}

/** Starts a worker process, lets it commit at least `rows` rows of the import, and kills it with SIGKILL. */
async function killMidImport(id: string, rows: number): Promise<Spawned> {
  const worker = startWorkerProcess();
  await worker.waitFor(/workers started/, 30_000);
  const until = Date.now() + 60_000;
  let seen = await processed(id);
  while (seen.processed < rows && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    seen = await processed(id);
  }
  expect(seen.processed, worker.stdout().slice(-3000)).toBeGreaterThanOrEqual(rows);
  worker.child.kill("SIGKILL");
  const exit = await worker.exited(10_000);
  expect(exit.signal).toBe("SIGKILL");
  return worker;
}

describe("a worker killed with SIGKILL mid-import", () => {
  it("another worker resumes from the last committed batch: exact counts, no duplicate people or events", async () => {
    const csv = ["email,external_id,first_name,labels,plan", ...Array.from({ length: ROWS }, (_, i) => `k${i}@x.io,ext${i},N${i},${i % 2 ? "A:B" : ""},p${i % 5}`)].join("\n");
    const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;

    const first = await killMidImport(id, 3_000);
    expect(first.stdout()).toContain("import parses its rows on a parse thread");
    const atKill = await processed(id);
    expect(atKill.status).toBe("processing");
    expect(atKill.processed).toBeLessThan(ROWS);

    const second = startWorkerProcess();
    await second.waitFor(/workers started/, 30_000);
    const done = await waitForImport(client, id, 120_000);
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: ROWS, processed: ROWS, created: ROWS, updated: 0, unchanged: 0, skipped: 0, failed: 0 });

    const [state] = await t.ctx.db.$client`
      select
        (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
        (select count(distinct lower(email))::int from people where workspace_id = ${client.workspaceId}) as emails,
        (select count(*)::int from events where import_id = ${id}) as events,
        (select count(distinct person_id)::int from events where import_id = ${id}) as event_people,
        (select coalesce(sum(cardinality(p.label_ids)), 0)::int from people p where p.workspace_id = ${client.workspaceId}) as label_links,
        (select count(*)::int from import_people where import_id = ${id}) as ledger,
        (select count(*)::int from people where created_import_id = ${id}) as provenance,
        (select attempts from imports where id = ${id}) as attempts`;
    expect(state).toEqual({ people: ROWS, emails: ROWS, events: ROWS, event_people: ROWS, label_links: ROWS, ledger: 0, provenance: ROWS, attempts: 2 });
    await second.kill();
  }, 180_000);

  it("with people already there and rows repeating across the kill: the first run's key sketch, the resumed run's ledger, exact counts", async () => {
    // The workspace holds k0..k5999 (a fifth of the file's rows), so the first run reads the file's keys first (key-sketch.ts) and records only
    // repeated keys in the ledger. Rows 15000+j repeat row j for every j divisible by 10: the earlier rows of existing
    // people (j < 6000) are found through the ledger after the kill, by a run that resumes mid-file without a sketch
    // (it records and looks up every row).
    const other = await createClient(t.ctx, undefined, "crash-sketch");
    await t.ctx.db.$client`
      insert into people (workspace_id, email, email_key, first_name)
      select ${other.workspaceId}::uuid, 'k' || i || '@x.io', 'k' || i || '@x.io', 'Old' from generate_series(0, 5999) i`;
    const keyOf = (i: number) => (i >= ROWS / 2 && (i - ROWS / 2) % 10 === 0 ? i - ROWS / 2 : i);
    const csv = ["email,first_name", ...Array.from({ length: ROWS }, (_, i) => `k${keyOf(i)}@x.io,N${i}`)].join("\n");
    const created = await other.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;

    const first = await killMidImport(id, 3_000);
    expect(first.stdout()).toContain("import has its file's key sketch");
    const atKill = await processed(id);
    expect(atKill.processed).toBeLessThan(ROWS / 2);

    const second = startWorkerProcess();
    await second.waitFor(/workers started/, 30_000);
    const done = await waitForImport(other, id, 120_000);
    expect(done.status).toBe("done");
    const repeats = ROWS / 2 / 10;
    expect(done.counts).toEqual({ total: ROWS, processed: ROWS, created: ROWS - repeats - 6_000, updated: 6_000, unchanged: 0, skipped: repeats, failed: 0 });
    const report = await errorReport(other, id);
    expect(report.length).toBe(repeats);
    expect(report.every((e, n) => e.code === "duplicate_in_file" && Number(e.row) === n * 10 + 1)).toBe(true);
    // Each person holds the first name of their file's last row.
    const lastRow = new Map<string, string>();
    for (let i = 0; i < ROWS; i++) lastRow.set(`k${keyOf(i)}@x.io`, `N${i}`);
    const people = await t.ctx.db.$client`select email_key, first_name from people where workspace_id = ${other.workspaceId}`;
    expect(people.length).toBe(ROWS - repeats);
    expect(people.filter((p) => lastRow.get(p.email_key as string) !== p.first_name)).toEqual([]);
    expect(second.stdout()).not.toContain("import has its file's key sketch");
    await second.kill();
  }, 180_000);
});
