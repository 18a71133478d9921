import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { contactsCsv, expectExactlyOnce, holdRow, spawnWorker, waitForProcessed } from "../helpers/faults.js";
import type { Spawned } from "../helpers/processes.js";
import { reconcileAll } from "../../src/workers/reconciler.js";

// One import split into three parts, run by three worker processes, must end exactly as one run of the same file.
const t = useTestContext({ IMPORT_BATCH_SIZE: "200" });
const PARTS = { IMPORT_PARTS: "3", IMPORT_PART_MIN_BYTES: "0", IMPORT_BATCH_SIZE: "200", IMPORT_CONCURRENCY: "1" };
let single: Client;
let workers: Spawned[] = [];

beforeAll(async () => {
  single = await createClient(t.ctx, undefined, "Single");
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await single?.app.close();
});

const startWorkers = (n: number, env: Record<string, string> = {}) => {
  const started = Array.from({ length: n }, () => spawnWorker(t.ctx, { ...PARTS, ...env }));
  workers.push(...started);
  return started;
};
/** The tests after the crash test reuse its workers; run alone, each starts its own. */
const ensureWorkers = () => {
  if (!workers.length) startWorkers(2);
};
const stopWorkers = async () => {
  await Promise.all(workers.map((w) => w.kill()));
  workers = [];
};

/**
 * A file that exercises what a split must keep: the same person in many rows far apart (a later row wins, the earlier
 * ones `duplicate_in_file`), emails that differ only in case and spaces, people who exist already (updated,
 * unchanged), invalid emails, blank and ragged rows, labels and a segment column.
 */
function trickyCsv(rows: number): string {
  const lines = ["email,first_name,plan,labels,segment"];
  for (let i = 0; i < rows; i++) {
    const n = i % 7 === 0 ? i % 50 : i; // every 7th row repeats one of 50 people
    if (i % 97 === 0) lines.push(",,,,");
    else if (i % 101 === 0) lines.push(`bad-${i},x,p,,`);
    else if (i % 103 === 0) lines.push(`ragged${i}@x.io,too,many,cells,here,now`);
    else if (i % 11 === 0) lines.push(` Person${n}@X.io ,N${i},p${i % 3},A:B,Seg${i % 2}`);
    else if (i < 40) lines.push(`existing${i}@x.io,${i % 2 ? "Same" : `Changed${i}`},,,`);
    else lines.push(`person${n}@x.io,N${i},p${i % 3},${i % 2 ? "A" : ""},`);
  }
  return lines.join("\n");
}

async function seedExisting(client: Client): Promise<void> {
  const csv = ["email,first_name", ...Array.from({ length: 40 }, (_, i) => `existing${i}@x.io,Same`)].join("\n");
  const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
  expect(res.status, res.body).toBe(201);
  expect((await waitForImport(client, res.json.id)).status).toBe("done");
}

async function runImport(client: Client, csv: string): Promise<any> {
  const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
  expect(res.status, res.body).toBe(201);
  return waitForImport(client, res.json.id, 120_000);
}

async function people(client: Client) {
  return t.ctx.db.$client`
    select p.email, p.first_name, p.attributes, coalesce((select array_agg(l.name order by l.name) from labels l where l.id = any(p.label_ids)), '{}') as labels,
      coalesce((select array_agg(s.name order by s.name) from segment_memberships m join segments s on s.id = m.segment_id where m.person_id = p.id), '{}') as segments,
      (select count(*)::int from events e where e.person_id = p.id) as events
    from people p where p.workspace_id = ${client.workspaceId} order by p.email`;
}

describe("an import split into parts across three worker processes", () => {
  async function compare(batchSize: string, full: boolean) {
    const a = await createClient(t.ctx, single.app, `Single${batchSize}`);
    const b = await createClient(t.ctx, single.app, `Split${batchSize}`);
    const csv = trickyCsv(3_000);
    startWorkers(1, { IMPORT_PARTS: "1", IMPORT_BATCH_SIZE: batchSize });
    await seedExisting(a);
    await seedExisting(b);
    const one = await runImport(a, csv);
    await stopWorkers();

    const procs = startWorkers(3, { IMPORT_BATCH_SIZE: batchSize });
    // All three listening before the import is sent: a process still starting could find every part taken (a part of
    // this small file runs in well under a second).
    await Promise.all(procs.map((p) => p.waitFor(/workers started/, 30_000)));
    const parted = await runImport(b, csv);
    expect(parted.status).toBe("done");
    expect(parted.counts).toEqual(one.counts);
    expect(one.counts.skipped).toBeGreaterThan(0);
    expect(one.counts.failed).toBeGreaterThan(0);
    expect(one.counts.updated).toBeGreaterThan(0);
    expect(one.counts.unchanged).toBeGreaterThan(0);
    const [parts] = await t.ctx.db.$client`select count(*)::int as n, bool_and(status = 'done') as done from import_parts where import_id = ${parted.id}`;
    expect(parts).toEqual({ n: 3, done: true });
    // More than one process ran a part of it (each has one slot; the parts' jobs were waiting at once).
    const ran = procs.filter((p) => p.stdout().split("\n").some((l) => l.includes('"job":"import.part"') && l.includes(parted.id)));
    expect(ran.length).toBeGreaterThanOrEqual(2);
    await stopWorkers();

    const [pa, pb] = [await people(a), await people(b)];
    // What the row that wins sets is the same whatever the batches. What an earlier row of the same person did when it
    // was committed in an earlier batch (labels it added, a segment it joined, its event) stays, in one run as in a
    // part: with batches of another size the rows meet in other batches, so that is compared with one batch each.
    const fields = (rows: typeof pa) => rows.map((r) => ({ email: r.email, first_name: r.first_name, attributes: r.attributes }));
    expect(fields(pb)).toEqual(fields(pa));
    if (full) expect(pb).toEqual(pa);
    // A duplicate names its later row when both met in one batch, "A later row" across batches.
    const report = (rows: Record<string, string>[]) => rows.map((r) => JSON.stringify({ ...r, message: full ? r.message : r.message!.replace(/^Row \d+ has/, "A later row has") }));
    expect(report(await errorReport(b, parted.id))).toEqual(report(await errorReport(a, one.id)));
  }

  it("ends as one run of the same file, file in one batch: counts, people, labels, segments, events, the error report", async () => {
    await compare("100000", true);
  }, 180_000);

  it("ends as one run of the same file over many batches: counts, each person's fields and the error report", async () => {
    await compare("200", false);
  }, 180_000);

  it("a worker killed mid-part: the part resumes from its checkpoint on another worker, every row once", async () => {
    const client = await createClient(t.ctx, single.app, "Crash");
    startWorkers(3);
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(6_000), headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const id = res.json.id as string;
    // Part 1's next batch waits on this lock: every worker is caught whatever its speed, then all are killed.
    const held = await holdRow(
      t.ctx,
      `part 1 of ${id}`,
      async (conn) => {
        const [r] = await conn`select p.status, p.checkpoint_row from import_parts p where p.import_id = ${id} and p.part = 1 for update`;
        return r ? { status: String(r.status), progress: Number(r.checkpoint_row) } : { status: "queued", progress: 0 };
      },
      { status: "processing", atLeast: 600, waitable: ["queued", "processing"] },
    );
    for (const w of workers) w.child.kill("SIGKILL");
    await held.release();
    await stopWorkers();
    startWorkers(2, { WORKER_LOCK_MS: "2000" });
    const done = await waitForImport(client, id, 120_000);
    expect(done.status).toBe("done");
    await expectExactlyOnce(t.ctx, client, id, 6_000);
    const [p1] = await t.ctx.db.$client`select attempts from import_parts where import_id = ${id} and part = 1`;
    expect(Number(p1?.attempts)).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it("a split import left processing with every part done (its last part stopped before finishing it) is finished once the reconciler queues its run again", async () => {
    const client = await createClient(t.ctx, single.app, "Stranded");
    ensureWorkers();
    const csv = contactsCsv(2_000, "s");
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const done = await waitForImport(client, res.json.id, 60_000);
    expect(done.status).toBe("done");
    // As if the last part had completed and its worker died before finishing the import; its jobs are long finished.
    await t.ctx.db.$client`update imports set status = 'processing', finished_at = null, queued_at = now() - interval '1 minute' where id = ${done.id}`;
    const r = await reconcileAll({ db: t.ctx.db, producer: t.ctx.producer, log: t.ctx.logger, graceMs: 0 });
    expect(r.results.imports?.requeued).toBe(1);
    const again = await waitForImport(client, done.id, 30_000);
    expect(again.status).toBe("done");
    expect(again.counts).toEqual(done.counts);
    await expectExactlyOnce(t.ctx, client, done.id, 2_000);
  }, 120_000);

  it("a malformed file fails the split import for every part, with csv-parse's reason; committed rows stay counted", async () => {
    const client = await createClient(t.ctx, single.app, "Malformed");
    ensureWorkers();
    const csv = `${contactsCsv(3_000, "m")}\n"never closed,x,y,,p1\nmore@x.io,e,N,,p2`;
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const ended = await waitForImport(client, res.json.id, 60_000);
    expect(ended.status).toBe("failed");
    expect(ended.failureReason).toMatch(/quote/i);
    const [after] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
             (select count(*)::int from import_parts where import_id = ${ended.id}) as parts`;
    expect(after!.parts).toBe(3);
    expect(after!.people).toBe(ended.counts.created);
  }, 120_000);

  it("a team-member import splits and ends as one run would; an events import runs whole", async () => {
    const client = await createClient(t.ctx, single.app, "Kinds");
    ensureWorkers();
    const members = ["email,first_name,role", ...Array.from({ length: 900 }, (_, i) => `member${i % 600}@x.io,M${i},${i % 2 ? "admin" : "agent"}`)].join("\n");
    const m = await client.request("POST", "/v1/imports?kind=members&identifier=email&start=true", { payload: members, headers: { "content-type": "text/csv" } });
    expect(m.status, m.body).toBe(201);
    const mDone = await waitForImport(client, m.json.id, 60_000);
    expect(mDone.status).toBe("done");
    expect(mDone.counts).toMatchObject({ total: 900, created: 600, skipped: 300, failed: 0 });
    const [members0] = await t.ctx.db.$client`select count(*)::int as n from team_members where workspace_id = ${client.workspaceId}`;
    expect(members0!.n).toBe(600);

    await seedExisting(client);
    const events = ["email,event,occurred_at", ...Array.from({ length: 1_200 }, (_, i) => `existing${i % 40}@x.io,opened,2026-01-0${1 + (i % 9)}T10:00:00Z`)].join("\n");
    const e = await client.request("POST", "/v1/imports?kind=events&identifier=email&start=true", { payload: events, headers: { "content-type": "text/csv" } });
    expect(e.status, e.body).toBe(201);
    const eDone = await waitForImport(client, e.json.id, 60_000);
    expect(eDone.status).toBe("done");
    expect(eDone.counts).toMatchObject({ total: 1_200, created: 1_200, failed: 0 });
    const [ev] = await t.ctx.db.$client`select count(*)::int as n, count(distinct import_row)::int as rows from events where import_id = ${e.json.id}`;
    expect(ev).toEqual({ n: 1_200, rows: 1_200 });
    // Team members split like contacts; events imports are never split (two parts could create one missing person).
    const [split] = await t.ctx.db.$client`
      select (select count(*)::int from import_parts where import_id = ${m.json.id}) as members,
             (select count(*)::int from import_parts where import_id = ${e.json.id}) as events`;
    expect(split).toEqual({ members: 3, events: 0 });
  }, 120_000);

  it("people of different parts sharing an external id: the batches that collide resume, and the import ends with exact counts", async () => {
    const client = await createClient(t.ctx, single.app, "Shared");
    ensureWorkers();
    // 3,000 people (distinct emails, spread over the parts) and only 100 external ids: the first to take each keeps it,
    // every other row fails as a conflict. Parts writing at once make PostgreSQL fail whole batches (a unique
    // violation or a deadlock); those resume from their checkpoints instead of using the job's attempts.
    const csv = ["email,external_id,first_name", ...Array.from({ length: 3_000 }, (_, i) => `shared${i}@x.io,ext${i % 100},N${i}`)].join("\n");
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const done = await waitForImport(client, res.json.id, 120_000);
    expect(done.status, done.failureReason).toBe("done");
    expect(done.counts).toEqual({ total: 3_000, processed: 3_000, created: 100, updated: 0, unchanged: 0, skipped: 0, failed: 2_900 });
    const [state] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
             (select count(distinct external_id)::int from people where workspace_id = ${client.workspaceId}) as ids,
             (select count(*)::int from import_errors where import_id = ${done.id} and code = 'conflict') as conflicts`;
    expect(state).toEqual({ people: 100, ids: 100, conflicts: 2_900 });
  }, 180_000);

  it("a batch in flight when another part cancels the import commits nothing", async () => {
    const client = await createClient(t.ctx, single.app, "InFlight");
    ensureWorkers();
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(20_000, "f"), headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const id = res.json.id as string;
    await waitForProcessed(t.ctx, id, 1_000);
    // Hold the import's row: the parts' batches write their rows and wait at their last statement (the import's
    // counts). Then end the import as a part that saw a cancel does, and let them go on.
    const conn = await t.ctx.db.$client.reserve();
    let atCancel: number;
    try {
      await conn`begin`;
      await conn`select id from imports where id = ${id} for update`;
      for (let waited = 0; ; waited += 20) {
        const [w] = await t.ctx.db.$client`
          select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%update imports set%' and datname = current_database()`;
        if (Number(w?.n) >= 1) break;
        if (waited > 30_000) throw new Error("no part batch came to wait on the import");
        await new Promise((r) => setTimeout(r, 20));
      }
      const [c] = await conn`update imports set status = 'cancelled', cancel_requested = true, finished_at = now() where id = ${id} returning created`;
      atCancel = Number(c?.created);
      await conn`commit`;
    } finally {
      conn.release();
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const [after] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
             (select created::int from imports where id = ${id}) as created, (select status from imports where id = ${id}) as status`;
    expect(after).toEqual({ people: atCancel, created: atCancel, status: "cancelled" });
  }, 120_000);

  it("a cancel stops every part; what they committed stays and is counted", async () => {
    const client = await createClient(t.ctx, single.app, "Cancel");
    ensureWorkers();
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: contactsCsv(20_000, "c"), headers: { "content-type": "text/csv" } });
    expect(res.status, res.body).toBe(201);
    const id = res.json.id as string;
    await waitForProcessed(t.ctx, id, 1_000);
    const cancel = await client.request("POST", `/v1/imports/${id}/cancel`);
    expect(cancel.status, cancel.body).toBe(202);
    const ended = await waitForImport(client, id, 60_000);
    expect(ended.status).toBe("cancelled");
    // Every part stops at its next batch: nothing is written after the parts have seen the cancel.
    await new Promise((r) => setTimeout(r, 1_500));
    const [after] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
             (select created::int from imports where id = ${id}) as created`;
    expect(after!.people).toBe(after!.created);
    expect(after!.people).toBeLessThan(20_000);
    const again = await waitForImport(client, id);
    expect(again.counts.created).toBe(after!.created);
  }, 120_000);
});
