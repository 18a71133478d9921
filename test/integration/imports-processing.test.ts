import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, importAndWait, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Small batches, so "across batches" cases need only a handful of rows.
const t = useTestContext({ IMPORT_BATCH_SIZE: "4" });
let workers: WorkerPool;

beforeAll(async () => {
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
});

async function fresh(): Promise<Client> {
  return createClient(t.ctx, undefined, `ws-${Math.random().toString(36).slice(2, 8)}`);
}

async function q(client: Client, text: string) {
  return t.ctx.db.$client.unsafe(text.replaceAll("$ws", `'${client.workspaceId}'`));
}

/** The workspace's people as [email key, first name], in key order. */
async function firstNames(client: Client): Promise<string[][]> {
  const people = await q(client, `select email_key, first_name from people where workspace_id = $ws order by email_key collate "C"`);
  return people.map((p) => [p.email_key as string, p.first_name as string]);
}

const BASE = ["email,first_name,plan,labels", "a@x.io,Ann,pro,VIP", "b@x.io,Bob,free,", "c@x.io,Cid,free,Trial:Demo", "d@x.io,Dee,pro,", "e@x.io,Eve,free,"].join("\n");

describe("the email, sent once in a batch's COPY text, is stored whole", () => {
  // The validator leaves out what the email's own key repeats (contacts/validate.ts); the batch derives it again
  // (copySource in contacts/batch.ts): on both write paths, a fresh batch (createAll) and the resolve pass.
  const stored = async (client: Client) =>
    (await q(client, `select email, email_key, external_id from people where workspace_id = $ws order by external_id`)).map((p) => [p.email, p.email_key, p.external_id]);

  it("by email: lower-case, mixed-case and Turkish addresses keep their spelling and key, and a new spelling updates the email", async () => {
    const client = await fresh();
    const csv = ["email,external_id", "ann@x.io,a", "Bob@X.io,b", "İz@x.io,c", "dee@x.io,d", "Eve@x.io,e"].join("\n");
    expect((await importAndWait(client, csv)).counts).toMatchObject({ created: 5, failed: 0 });
    const first = [
      ["ann@x.io", "ann@x.io", "a"],
      ["Bob@X.io", "bob@x.io", "b"],
      ["İz@x.io", "i̇z@x.io", "c"],
      ["dee@x.io", "dee@x.io", "d"],
      ["Eve@x.io", "eve@x.io", "e"],
    ];
    expect(await stored(client)).toEqual(first);
    // The same people spelled otherwise: the lower-case spelling (sent as \\N) and a mixed-case one are both changes.
    const again = ["email,external_id", "ANN@x.io,a", "bob@x.io,b", "İz@x.io,c", "dee@x.io,d", "eve@x.io,e"].join("\n");
    expect((await importAndWait(client, again)).counts).toMatchObject({ created: 0, updated: 3, unchanged: 2, failed: 0 });
    expect(await stored(client)).toEqual([
      ["ANN@x.io", "ann@x.io", "a"],
      ["bob@x.io", "bob@x.io", "b"],
      ["İz@x.io", "i̇z@x.io", "c"],
      ["dee@x.io", "dee@x.io", "d"],
      ["eve@x.io", "eve@x.io", "e"],
    ]);
  });

  it("by external id: the email and its key as given, none where the row has none, and a new email updates both", async () => {
    const client = await fresh();
    const csv = ["email,external_id", "ann@x.io,a", "Bob@X.io,b", ",c", "dee@x.io,d", ",e"].join("\n");
    expect((await importAndWait(client, csv, { identifier: "external_id" })).counts).toMatchObject({ created: 5, failed: 0 });
    expect(await stored(client)).toEqual([
      ["ann@x.io", "ann@x.io", "a"],
      ["Bob@X.io", "bob@x.io", "b"],
      [null, null, "c"],
      ["dee@x.io", "dee@x.io", "d"],
      [null, null, "e"],
    ]);
    const again = ["email,external_id", "ann@x.io,a", "bob@x.io,b", "Cid@X.io,c", "dee@x.io,d", "eve@x.io,e"].join("\n");
    expect((await importAndWait(client, again, { identifier: "external_id" })).counts).toMatchObject({ created: 0, updated: 3, unchanged: 2, failed: 0 });
    expect(await stored(client)).toEqual([
      ["ann@x.io", "ann@x.io", "a"],
      ["bob@x.io", "bob@x.io", "b"],
      ["Cid@X.io", "cid@x.io", "c"],
      ["dee@x.io", "dee@x.io", "d"],
      ["eve@x.io", "eve@x.io", "e"],
    ]);
  });
});

describe("re-imports count exactly what changed", () => {
  let client: Client;
  beforeAll(async () => {
    client = await fresh();
  });

  it("a first import creates everyone and writes one person.created event each", async () => {
    const done = await importAndWait(client, BASE);
    expect(done.counts).toEqual({ total: 5, processed: 5, created: 5, updated: 0, unchanged: 0, skipped: 0, failed: 0 });
    const events = await q(client, `select name, count(*)::int as n from events where workspace_id = $ws group by name`);
    expect(events).toEqual([{ name: "person.created", n: 5 }]);
  });

  it("the same file again: all unchanged, nothing written", async () => {
    const [before] = await q(client, `select max(updated_at) as u, (select count(*)::int from events where workspace_id = $ws) as e from people where workspace_id = $ws`);
    const done = await importAndWait(client, BASE);
    expect(done.counts).toEqual({ total: 5, processed: 5, created: 0, updated: 0, unchanged: 5, skipped: 0, failed: 0 });
    const [after] = await q(client, `select max(updated_at) as u, (select count(*)::int from events where workspace_id = $ws) as e from people where workspace_id = $ws`);
    expect(after).toEqual(before);
  });

  it("three rows changed (a field, an attribute, a label), one new: exact updated / unchanged / created, events name the changes", async () => {
    const changed =
      BASE.replace("b@x.io,Bob,free,", "b@x.io,Bobby,free,").replace("c@x.io,Cid,free,", "c@x.io,Cid,pro,").replace("d@x.io,Dee,pro,", "d@x.io,Dee,pro,Gold") +
      "\nf@x.io,Fay,pro,";
    const done = await importAndWait(client, changed);
    expect(done.counts).toEqual({ total: 6, processed: 6, created: 1, updated: 3, unchanged: 2, skipped: 0, failed: 0 });
    const [created] = await q(client, `select e.properties->'changed' as changed from events e where e.name = 'person.created' and e.import_id = '${done.id}'`);
    expect(created?.changed).toEqual(["email", "first_name", "attributes.plan"]);
    const updates = await q(
      client,
      `select p.email, e.properties->'changed' as changed from events e join people p on p.id = e.person_id
       where e.workspace_id = $ws and e.name = 'person.updated' and e.import_id = '${done.id}' order by p.email`,
    );
    expect(updates.map((u) => [u.email, u.changed])).toEqual([
      ["b@x.io", ["first_name"]],
      ["c@x.io", ["attributes.plan"]],
      ["d@x.io", ["labels"]],
    ]);
    const labels = await q(client, `select l.name from people p cross join unnest(p.label_ids) lid join labels l on l.id = lid where p.email = 'd@x.io' and p.workspace_id = $ws`);
    expect(labels.map((l) => l.name)).toEqual(["Gold"]);
  });

  it("a created person's event names every attribute key, in code point order (as the database's `collate \"C\"`)", async () => {
    const other = await fresh();
    const csv = ["email,zeta,émile,_b,Zed,Alpha,name", "k@x.io,1,2,3,4,5,"].join("\n");
    const keys = ["zeta", "émile", "_b", "Zed", "Alpha"];
    const mapping = { email: "email", name: "name", ...Object.fromEntries(keys.map((k) => [k, `attribute:${k}`])) };
    const done = await importAndWait(other, csv, { mapping });
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    const [created] = await q(other, `select e.properties->'changed' as changed from events e where e.name = 'person.created' and e.workspace_id = $ws`);
    expect(created?.changed).toEqual(["email", "attributes.Alpha", "attributes.Zed", "attributes._b", "attributes.zeta", "attributes.émile"]);
  });

  it("each created person's event names what its own row set, when the rows of a batch fill different columns", async () => {
    const other = await fresh();
    // Batches of 4: the first batch holds four different sets of filled columns; the second repeats one and adds one.
    const csv = ["email,first_name,plan,city", "a@x.io,Ann,pro,", "b@x.io,,,Oslo", "c@x.io,Cid,,", "d@x.io,,free,Rome", "e@x.io,Eve,pro,", "f@x.io,,,"].join("\n");
    const done = await importAndWait(other, csv, { mapping: { email: "email", first_name: "first_name", plan: "attribute:plan", city: "attribute:city" } });
    expect(done.counts).toMatchObject({ created: 6, failed: 0 });
    const events = await q(
      other,
      `select p.email, e.properties->'changed' as changed from events e join people p on p.id = e.person_id
       where e.workspace_id = $ws and e.name = 'person.created' order by p.email`,
    );
    expect(events.map((e) => [e.email, e.changed])).toEqual([
      ["a@x.io", ["email", "first_name", "attributes.plan"]],
      ["b@x.io", ["email", "attributes.city"]],
      ["c@x.io", ["email", "first_name"]],
      ["d@x.io", ["email", "attributes.city", "attributes.plan"]],
      ["e@x.io", ["email", "first_name", "attributes.plan"]],
      ["f@x.io", ["email"]],
    ]);
  });

  it("an empty cell leaves the stored value as it is", async () => {
    const done = await importAndWait(client, "email,first_name,plan\na@x.io,,");
    expect(done.counts).toMatchObject({ unchanged: 1, updated: 0 });
    const [a] = await q(client, `select first_name, attributes from people where workspace_id = $ws and email = 'a@x.io'`);
    expect(a).toMatchObject({ first_name: "Ann", attributes: { plan: "pro" } });
  });

  it("labels replace drops the labels a row does not list; labels are case-sensitive", async () => {
    const done = await importAndWait(client, "email,labels\nc@x.io,trial", { options: { labels: "replace" } });
    expect(done.counts).toMatchObject({ updated: 1 });
    const labels = await q(client, `select l.name from people p cross join unnest(p.label_ids) lid join labels l on l.id = lid where p.email = 'c@x.io' and p.workspace_id = $ws order by 1`);
    expect(labels.map((l) => l.name)).toEqual(["trial"]);
    const all = await q(client, `select name from labels where workspace_id = $ws order by name collate "C"`);
    expect(all.map((l) => l.name)).toEqual(["Demo", "Gold", "Trial", "VIP", "trial"]);
  });
});

describe("duplicates within one file: the later row wins, the earlier is skipped with duplicate_in_file", () => {
  it("within a batch and across batches (batch size 4), emails compared case-insensitively", async () => {
    const client = await fresh();
    const csv = ["email,first_name", "x@x.io,One", "X@x.io,Two", "y@x.io,Y1", "z@x.io,Z", "w@x.io,W", "y@x.io,Y2", "v@x.io,V", "x@x.io,Three"].join("\n");
    const done = await importAndWait(client, csv);
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: 8, processed: 8, created: 5, updated: 0, unchanged: 0, skipped: 3, failed: 0 });
    const report = await errorReport(client, done.id);
    expect(report.map((e) => [e.row, e.code])).toEqual([
      ["1", "duplicate_in_file"],
      ["2", "duplicate_in_file"],
      ["3", "duplicate_in_file"],
    ]);
    const rows = await q(client, `select lower(email) as e, first_name from people where workspace_id = $ws order by 1`);
    expect(rows.map((r) => [r.e, r.first_name])).toEqual([
      ["v@x.io", "V"],
      ["w@x.io", "W"],
      ["x@x.io", "Three"],
      ["y@x.io", "Y2"],
      ["z@x.io", "Z"],
    ]);
    const [ev] = await q(client, `select count(*)::int as n, count(distinct person_id)::int as people from events where workspace_id = $ws and name = 'person.created'`);
    expect(ev).toEqual({ n: 5, people: 5 });
  });
});

describe("modes and options", () => {
  let client: Client;
  beforeAll(async () => {
    client = await fresh();
    await importAndWait(client, "email,first_name\nold@x.io,Old");
  });

  it("create_only leaves existing people alone and says so", async () => {
    const done = await importAndWait(client, "email,first_name\nold@x.io,Changed\nnew1@x.io,New", { options: { mode: "create_only" } });
    expect(done.counts).toMatchObject({ created: 1, updated: 0, skipped: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 1, code: "already_exists" })]);
    const [old] = await q(client, `select first_name from people where workspace_id = $ws and email = 'old@x.io'`);
    expect(old?.first_name).toBe("Old");
  });

  it("update_only creates no one", async () => {
    const done = await importAndWait(client, "email,first_name\nold@x.io,Updated\nnobody@x.io,No", { options: { mode: "update_only" } });
    expect(done.counts).toMatchObject({ created: 0, updated: 1, skipped: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 2, code: "not_found" })]);
    const [n] = await q(client, `select count(*)::int as n from people where workspace_id = $ws and email = 'nobody@x.io'`);
    expect(n?.n).toBe(0);
  });

  it("createSegment makes a static segment of everyone the import touched", async () => {
    const done = await importAndWait(client, "email\nold@x.io\nnew1@x.io\nnew2@x.io\nbad", { options: { createSegment: { name: "March upload" } } });
    expect(done.segmentIds).toHaveLength(1);
    const members = await q(
      client,
      `select p.email from segment_memberships m join people p on p.id = m.person_id join segments s on s.id = m.segment_id
       where s.id = '${done.segmentIds[0]}' and s.workspace_id = $ws and s.type = 'static' order by 1`,
    );
    expect(members.map((m) => m.email)).toEqual(["new1@x.io", "new2@x.io", "old@x.io"]);
  });

  it("a unique field another person holds fails that row only", async () => {
    await importAndWait(client, "email,external_id\nholder@x.io,ext-1", { identifier: "email" });
    const done = await importAndWait(client, "email,external_id\nother@x.io,ext-1\nfine@x.io,ext-2");
    expect(done.counts).toMatchObject({ created: 1, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 1, column: "external_id", value: "ext-1", code: "conflict" })]);
  });

  it("an existing person taking another's unique value fails; the holder, repeating their own value, does not", async () => {
    // holder@x.io holds ext-1 (above); fine@x.io holds ext-2 and now asks for ext-1, after a row repeating the holder.
    const done = await importAndWait(client, "email,external_id,first_name\nfine@x.io,ext-1,Fine\nholder@x.io,ext-1,Holder");
    expect(done.counts).toMatchObject({ updated: 1, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 1, column: "external_id", value: "ext-1", code: "conflict" })]);
    const rows = await q(client, `select email, external_id, first_name from people where workspace_id = $ws and email in ('fine@x.io', 'holder@x.io') order by 1`);
    expect(rows).toEqual([
      { email: "fine@x.io", external_id: "ext-2", first_name: null },
      { email: "holder@x.io", external_id: "ext-1", first_name: "Holder" },
    ]);
  });

  it("in one batch, a new person and an existing one asking for the same new value: the earlier row keeps it", async () => {
    // The batch both creates a person and changes a unique field of another: it is checked before anything is written
    // (left to the unique index, the insert would take ext-9 and the update would then violate it).
    const done = await importAndWait(client, "email,external_id,first_name\nnewcomer@x.io,ext-9,Newcomer\nfine@x.io,ext-9,Fine\nunrelated@x.io,,Un");
    expect(done.counts).toMatchObject({ created: 2, updated: 0, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 2, column: "external_id", value: "ext-9", code: "conflict" })]);
    const rows = await q(client, `select email, external_id from people where workspace_id = $ws and email in ('newcomer@x.io', 'fine@x.io') order by 1`);
    expect(rows).toEqual([
      { email: "fine@x.io", external_id: "ext-2" },
      { email: "newcomer@x.io", external_id: "ext-9" },
    ]);
  });

  it("the rows of a batch that change nothing still count unchanged when another row of it fails", async () => {
    // holder, newcomer and fine keep what they hold (not written to the staging table: nothing is left to do for them);
    // the new person asking for fine's ext-2 fails, which has the batch's counts read back from the staging table.
    const client = await fresh();
    await importAndWait(client, "email,external_id\nholder@x.io,ext-1\nnewcomer@x.io,ext-9\nfine@x.io,ext-2");
    const file = "email,external_id\nholder@x.io,ext-1\nnewcomer@x.io,ext-9\nthief-2@x.io,ext-2\nfine@x.io,ext-2";
    const done = await importAndWait(client, file);
    expect(done.counts).toEqual({ total: 4, processed: 4, created: 0, updated: 0, unchanged: 3, skipped: 0, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 3, column: "external_id", value: "ext-2", code: "conflict" })]);
    const dry = await pasteImport(client, file, { identifier: "email" });
    expect((await client.request("POST", `/v1/imports/${dry.json.id}/validate`)).status).toBe(202);
    expect((await waitForImport(client, dry.json.id)).counts).toEqual(done.counts);
  });

  it("a person whose email has no key yet still holds it against a new row of a checked batch, when their own row changes nothing", async () => {
    // (Keys left for backfillEmailKeys by migration 0004.) The check's probe on the key cannot find such a person; its
    // window over the batch's rows does, so their unchanged row is kept in the staging table. The batch is checked
    // before it writes because u-3 changes their email (a batch that changes no unique field of an existing person
    // leaves its new people to the unique index, which does not see a missing key either).
    const client = await fresh();
    await importAndWait(client, "external_id,email\nu-1,pending@x.io\nu-3,c@x.io", { identifier: "external_id" });
    await q(client, `update people set email_key = null where workspace_id = $ws and external_id = 'u-1'`);
    const done = await importAndWait(client, "external_id,email\nu-1,pending@x.io\nu-2,PENDING@x.io\nu-3,c2@x.io", { identifier: "external_id" });
    expect(done.counts).toEqual({ total: 3, processed: 3, created: 0, updated: 1, unchanged: 1, skipped: 0, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 2, column: "email", value: "PENDING@x.io", code: "conflict" })]);
  });

  it("a batch of new people only, one taking a value another person holds: that row fails, the rest are created", async () => {
    // No row changes a unique field, so the unique index checks the new people; its violation undoes the insert, the
    // rows are checked, and the others are created.
    const done = await importAndWait(client, "email,external_id\nfirst-new@x.io,ext-20\nthief@x.io,ext-1\nsecond-new@x.io,ext-21\ndouble@x.io,ext-20");
    expect(done.counts).toMatchObject({ created: 2, failed: 2 });
    expect(done.errors).toEqual([
      expect.objectContaining({ row: 2, column: "external_id", value: "ext-1", code: "conflict" }),
      expect.objectContaining({ row: 4, column: "external_id", value: "ext-20", code: "conflict" }),
    ]);
    const rows = await q(client, `select email from people where workspace_id = $ws and external_id in ('ext-20', 'ext-21') order by 1`);
    expect(rows.map((r) => r.email)).toEqual(["first-new@x.io", "second-new@x.io"]);
  });
});

describe("dry run (validate)", () => {
  it("reports what would happen and writes nothing to people, labels, segments or events", async () => {
    const client = await fresh();
    await importAndWait(client, "email,first_name\nkeep@x.io,Keep\nchange@x.io,Old");
    const snapshot = async () =>
      q(
        client,
        `select (select count(*)::int from people where workspace_id = $ws) as people,
                (select string_agg(email || ':' || coalesce(first_name, ''), ',' order by email) from people where workspace_id = $ws) as names,
                (select count(*)::int from events where workspace_id = $ws) as events,
                (select count(*)::int from labels where workspace_id = $ws) as labels,
                (select count(*)::int from segments where workspace_id = $ws) as segments`,
      );
    const before = await snapshot();
    const csv = "email,first_name,labels,Segment Name\nkeep@x.io,Keep,,\nchange@x.io,New,L1,S1\nnew@x.io,Neo,L2,S1\nbroken,X,,";
    const created = await pasteImport(client, csv, { identifier: "email" });
    const validating = await client.request("POST", `/v1/imports/${created.json.id}/validate`);
    expect(validating.status).toBe(202);
    const done = await waitForImport(client, created.json.id);
    expect(done.status).toBe("validated");
    expect(done.counts).toEqual({ total: 4, processed: 4, created: 1, updated: 1, unchanged: 1, skipped: 0, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 4, code: "invalid_email" })]);
    expect(await snapshot()).toEqual(before);
    // Then the real run from the validated state does what the dry run said.
    const started = await client.request("POST", `/v1/imports/${created.json.id}/start`);
    expect(started.status).toBe(202);
    const real = await waitForImport(client, created.json.id);
    expect(real.status).toBe("done");
    expect(real.counts).toEqual(done.counts);
  });
});

describe("the run statuses and counts the contract promises", () => {
  const ZERO = { total: 0, processed: 0, created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 };

  it("POST /validate answers 202 validating; a start after it answers queued without the dry run's counts or errors", async () => {
    const client = await fresh();
    const created = await pasteImport(client, "email,first_name\nok@x.io,Ok\nbroken,X", { identifier: "email" });
    const validating = await client.request("POST", `/v1/imports/${created.json.id}/validate`);
    expect(validating.status).toBe(202);
    expect(validating.json.status).toBe("validating");
    const dry = await waitForImport(client, created.json.id);
    expect(dry).toMatchObject({ status: "validated", counts: { total: 2, created: 1, failed: 1 }, errorCount: 1 });

    const started = await client.request("POST", `/v1/imports/${created.json.id}/start`);
    expect(started.status).toBe(202);
    expect(started.json).toMatchObject({ status: "queued", dryRun: false, counts: ZERO, errorCount: 0, errors: [] });
    const real = await waitForImport(client, created.json.id);
    expect(real).toMatchObject({ status: "done", counts: { total: 2, created: 1, failed: 1 }, errorCount: 1 });
  });

  it("segmentIds lists the static segments that segment columns created or joined, and the createSegment one", async () => {
    const client = await fresh();
    // 5 rows: two batches of 4, so the ids gathered by the first batch must survive the second and the finish.
    const csv = "email,Segment Name\ns1@x.io,Gold\ns2@x.io,Silver\ns3@x.io,\ns4@x.io,Gold\ns5@x.io,Bronze";
    const done = await importAndWait(client, csv, { mapping: { email: "email", "Segment Name": "segment" }, options: { createSegment: { name: "Upload" } } });
    expect(done.status).toBe("done");
    const segs = await q(client, `select id::text, name from segments where workspace_id = $ws`);
    const idOf = Object.fromEntries(segs.map((s) => [s.name as string, s.id as string]));
    expect(Object.keys(idOf).sort()).toEqual(["Bronze", "Gold", "Silver", "Upload"]);
    expect([...done.segmentIds].sort()).toEqual([idOf.Bronze, idOf.Gold, idOf.Silver, idOf.Upload].sort());

    // A dry run joins nothing, so it lists nothing.
    const dry = await pasteImport(client, "email,Segment Name\ns6@x.io,Platinum", { identifier: "email", mapping: { email: "email", "Segment Name": "segment" } });
    await client.request("POST", `/v1/imports/${dry.json.id}/validate`);
    expect((await waitForImport(client, dry.json.id)).segmentIds).toEqual([]);
  });
});

describe("the ledger holds only the rows whose identifier repeats in the file (key-sketch.ts)", () => {
  it("a person named once is neither recorded nor looked up; a repeated one is, and the earlier row is skipped", async () => {
    const client = await fresh();
    await importAndWait(client, "email,first_name\na@x.io,A\nb@x.io,B\nc@x.io,C");
    // Past the first 64 KiB (an unclosed quote there is refused at intake): the run fails at row 7 after committing
    // rows 1-8 in two batches, and a failed import keeps its ledger, so the test can read what it recorded.
    const pad = "p".repeat(20_000);
    const rows = ["a@x.io,A2", "b@x.io,B", "c@x.io,C2", "n@x.io,N", "C@x.io,C3", "m@x.io,M", "o@x.io,O", "p@x.io,P"].map((r) => `${r},${pad}`);
    const csv = ["email,first_name,pad", ...rows, 'bad@x.io,"Unclosed,x', "after@x.io,Z,x"].join("\n") + "\n";
    const failed = await importAndWait(client, csv, { mapping: { email: "email", first_name: "first_name", pad: "ignore" } });
    expect(failed.status, String(failed.failureReason)).toBe("failed");
    expect(failed.counts).toMatchObject({ processed: 8, created: 4, updated: 2, unchanged: 1, skipped: 1, failed: 0 });
    expect((await errorReport(client, failed.id)).map((e) => [e.row, e.code])).toEqual([["3", "duplicate_in_file"]]);
    const ledger = await q(client, `select p.email_key, ip.row::int from import_people ip join people p on p.id = ip.person_id where ip.import_id = '${failed.id}'`);
    expect(ledger).toEqual([{ email_key: "c@x.io", row: 5 }]);
    expect(await firstNames(client)).toEqual([
      ["a@x.io", "A2"],
      ["b@x.io", "B"],
      ["c@x.io", "C3"],
      ["m@x.io", "M"],
      ["n@x.io", "N"],
      ["o@x.io", "O"],
      ["p@x.io", "P"],
    ]);
  });
});

describe("batches in which no identifier repeats (key-sketch.ts): the ledger is left out of their statements", () => {
  it("a dry run counts as the real run, and the later row of the one repeated person wins", async () => {
    const client = await fresh();
    await importAndWait(client, "email,first_name\na@x.io,A\nb@x.io,B\nc@x.io,C");
    // Batch 1 (rows 1-4) holds no identifier that repeats in the file; d@x.io is in batch 2 (row 5) and batch 3 (row 9).
    const csv = [
      "email,first_name",
      ...["a@x.io,A2", "b@x.io,B", "n1@x.io,N1", "n2@x.io,N2"],
      ...["d@x.io,D", "n3@x.io,N3", "c@x.io,C2", "n4@x.io,N4"],
      ...["D@x.io,D2", "n5@x.io,N5", "n6@x.io,N6", "n7@x.io,N7"],
    ].join("\n");
    const created = await pasteImport(client, csv, { identifier: "email" });
    const sketched = t.ctx.logs.filter((l) => l.includes("import has its file's key sketch")).length;
    expect((await client.request("POST", `/v1/imports/${created.json.id}/validate`)).status).toBe(202);
    const dry = await waitForImport(client, created.json.id);
    expect(dry.status).toBe("validated");
    expect((await client.request("POST", `/v1/imports/${created.json.id}/start`)).status).toBe(202);
    const real = await waitForImport(client, created.json.id);
    expect(real.status).toBe("done");
    // Both runs read the file's keys first.
    expect(t.ctx.logs.filter((l) => l.includes("import has its file's key sketch")).length).toBe(sketched + 2);
    expect(real.counts).toEqual({ total: 12, processed: 12, created: 8, updated: 2, unchanged: 1, skipped: 1, failed: 0 });
    expect(dry.counts).toEqual(real.counts);
    expect((await errorReport(client, created.json.id)).map((e) => [e.row, e.code])).toEqual([["5", "duplicate_in_file"]]);
    expect(await firstNames(client)).toEqual([
      ["a@x.io", "A2"],
      ["b@x.io", "B"],
      ["c@x.io", "C2"],
      ["d@x.io", "D2"],
      ["n1@x.io", "N1"],
      ["n2@x.io", "N2"],
      ["n3@x.io", "N3"],
      ["n4@x.io", "N4"],
      ["n5@x.io", "N5"],
      ["n6@x.io", "N6"],
      ["n7@x.io", "N7"],
    ]);
    // d@x.io's second row updates the person its first row created: the first row is the one skipped.
    const events = await q(client, `select name, count(*)::int as n from events where import_id = '${created.json.id}' group by name order by name`);
    expect(events).toEqual([
      { name: "person.created", n: 8 },
      { name: "person.updated", n: 3 },
    ]);
  });
});

describe("a person someone else changes while the batch waits for its lock", () => {
  it("is diffed again under the lock: a row that now changes nothing counts unchanged and writes no event", async () => {
    const client = await fresh();
    await importAndWait(client, "email,first_name\nx@x.io,Old\ny@x.io,Y");
    const other = await t.ctx.db.$client.reserve();
    let id = "";
    try {
      await other.unsafe("begin");
      await other`update people set first_name = 'New' where workspace_id = ${client.workspaceId} and email_key = 'x@x.io'`;
      const created = await pasteImport(client, "email,first_name\nx@x.io,New\ny@x.io,Y2", { identifier: "email", start: true });
      expect(created.status).toBe(201);
      id = created.json.id;
      // The batch read x@x.io as it was committed (Old), then waits to lock the person: only then does the change commit.
      for (let waited = 0; ; waited += 20) {
        const [w] = await t.ctx.db.$client`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like '%for update%' and pid <> pg_backend_pid()`;
        if (w?.n) break;
        if (waited > 20_000) throw new Error("the import's batch never waited for the person's lock");
        await new Promise((r) => setTimeout(r, 20));
      }
      await other.unsafe("commit");
    } finally {
      other.release();
    }
    const done = await waitForImport(client, id);
    expect(done.counts).toMatchObject({ created: 0, updated: 1, unchanged: 1, failed: 0 });
    const events = await q(client, `select e.name, e.properties->'changed' as changed, p.email_key from events e join people p on p.id = e.person_id where e.import_id = '${id}'`);
    expect(events).toEqual([{ name: "person.updated", changed: ["first_name"], email_key: "y@x.io" }]);
  });
});

describe("dry run over many batches (batch size 4)", () => {
  it("counts a person repeated in a later batch once, as the real run does, with the same error report", async () => {
    const client = await fresh();
    await importAndWait(client, "email,first_name\nold@x.io,Old\nsame@x.io,Same");
    // Rows 1 and 7 (new person), 2 and 8 (existing person), 3 and 6 (another new person) repeat across batches.
    const csv = ["email,first_name", "n1@x.io,A", "old@x.io,New", "n2@x.io,B", "same@x.io,Same", "n3@x.io,C", "N2@x.io,B2", "n1@x.io,A2", "old@x.io,Newer", "n4@x.io,D"].join("\n");
    const created = await pasteImport(client, csv, { identifier: "email" });
    expect((await client.request("POST", `/v1/imports/${created.json.id}/validate`)).status).toBe(202);
    const dry = await waitForImport(client, created.json.id);
    expect(dry.status).toBe("validated");
    const dryReport = (await errorReport(client, created.json.id)).map((e) => [e.row, e.code]);
    expect((await client.request("POST", `/v1/imports/${created.json.id}/start`)).status).toBe(202);
    const real = await waitForImport(client, created.json.id);
    expect(real.status).toBe("done");
    expect(real.counts).toEqual({ total: 9, processed: 9, created: 4, updated: 1, unchanged: 1, skipped: 3, failed: 0 });
    expect(dry.counts).toEqual(real.counts);
    const realReport = (await errorReport(client, created.json.id)).map((e) => [e.row, e.code]);
    expect(realReport).toEqual([
      ["1", "duplicate_in_file"],
      ["2", "duplicate_in_file"],
      ["3", "duplicate_in_file"],
    ]);
    expect(dryReport).toEqual(realReport);
  });
});

describe("idempotency, history and cancel", () => {
  it("the same Idempotency-Key with the same request returns the original import; with another request, 422", async () => {
    const client = await fresh();
    const headers = { "idempotency-key": "upload-42" };
    const first = await pasteImport(client, "email\nidem@x.io", { identifier: "email" }, headers);
    const second = await pasteImport(client, "email\nidem@x.io", { identifier: "email" }, headers);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.json.id).toBe(first.json.id);
    expect(second.headers.location).toBe(`/v1/imports/${first.json.id}`);
    const other = await pasteImport(client, "email\nother@x.io", { identifier: "email" }, headers);
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe("idempotency_key_reused");
    const [n] = await q(client, `select count(*)::int as n from imports where workspace_id = $ws`);
    expect(n?.n).toBe(1);
    // The replay's and the refused request's uploads are not kept: only the import's own file is.
    expect(await readdir(path.join(t.ctx.storageDir, "uploads", client.workspaceId))).toHaveLength(1);
  });

  it("GET /v1/imports lists history newest first, filters by status, pages with a cursor", async () => {
    const client = await fresh();
    const a = await importAndWait(client, "email\nh1@x.io");
    const b = await pasteImport(client, "email\nh2@x.io");
    const c = await importAndWait(client, "email\nh3@x.io");
    const all = await client.request("GET", "/v1/imports?limit=2");
    expect(all.json.data.map((i: { id: string }) => i.id)).toEqual([c.id, b.json.id]);
    const next = await client.request("GET", `/v1/imports?limit=2&cursor=${all.json.nextCursor}`);
    expect(next.json.data.map((i: { id: string }) => i.id)).toEqual([a.id]);
    expect(next.json.nextCursor).toBeNull();
    const drafts = await client.request("GET", "/v1/imports?status=draft");
    expect(drafts.json.data.map((i: { id: string }) => i.id)).toEqual([b.json.id]);
    const bad = await client.request("GET", "/v1/imports?status=nope");
    expect(bad.status).toBe(422);
  });

  it("cancel stops a running import after its current batch; committed rows stay and the counts say so", async () => {
    const client = await fresh();
    const rows = Array.from({ length: 4_000 }, (_, i) => `cx${i}@x.io,N${i}`);
    const created = await pasteImport(client, ["email,first_name", ...rows].join("\n"), { identifier: "email", start: true });
    const id = created.json.id;
    for (let i = 0; i < 400; i++) {
      const cur = await client.request("GET", `/v1/imports/${id}`);
      if (cur.json.counts.processed > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const cancel = await client.request("POST", `/v1/imports/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const done = await waitForImport(client, id);
    expect(done.status).toBe("cancelled");
    expect(done.counts.processed).toBeLessThan(4_000);
    const [n] = await q(client, `select count(*)::int as n from people where workspace_id = $ws`);
    expect(n?.n).toBe(done.counts.created);
    const again = await client.request("POST", `/v1/imports/${id}/cancel`);
    expect(again.status).toBe(409);
  });

  it("another workspace cannot see, start or cancel the import", async () => {
    const owner = await fresh();
    const stranger = await fresh();
    const created = await pasteImport(owner, "email\nmine@x.io", { identifier: "email" });
    for (const [method, url] of [
      ["GET", `/v1/imports/${created.json.id}`],
      ["GET", `/v1/imports/${created.json.id}/errors`],
      ["POST", `/v1/imports/${created.json.id}/start`],
      ["POST", `/v1/imports/${created.json.id}/cancel`],
      ["PUT", `/v1/imports/${created.json.id}/mapping`],
    ] as const) {
      const res = await stranger.request(method, url, method === "PUT" ? { payload: { identifier: "email", mapping: { email: "email" } } } : {});
      expect(res.status, `${method} ${url}`).toBe(404);
    }
    const list = await stranger.request("GET", "/v1/imports");
    expect(list.json.data).toEqual([]);
  });
});
