import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Batches of 2 rows: every file below crosses batch boundaries.
const t = useTestContext({ IMPORT_BATCH_SIZE: "2" });
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
  await t.ctx.db.$client`
    insert into people (workspace_id, email, email_key, external_id) values
      (${client.workspaceId}, 'Ada@example.com', 'ada@example.com', 'u-ada'), (${client.workspaceId}, 'alan@example.com', 'alan@example.com', 'u-alan')`;
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

const HEADER = "Email,Event Name,Timestamp,Plan,Amount";
const FILE = [
  HEADER,
  "ada@example.com,Clicked Upgrade,2026-11-20T10:00:00Z,pro,12.5",
  "ADA@example.com,Clicked Upgrade,2026-11-21 10:00,pro,",
  "ghost@example.com,Clicked Upgrade,2026-11-21,free,1",
  "alan@example.com,Viewed Pricing,yesterday,,",
  "alan@example.com,,2026-11-21,,",
  "alan@example.com,Viewed Pricing,1732000000,,3",
].join("\n");

async function eventsOf(importId: string) {
  const rows = await t.ctx.db.$client`
    select e.import_row, p.email, e.name, to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at, e.properties
    from events e join people p on p.id = e.person_id
    where e.import_id = ${importId} order by e.import_row`;
  return rows.map((r) => [Number(r.import_row), r.email, r.name, r.at, r.properties]);
}

async function createEventsImport(csv: string, fields: Record<string, unknown> = {}) {
  const created = await pasteImport(client, csv, { kind: "events", identifier: "email", ...fields });
  expect(created.status).toBe(201);
  return created.json;
}

async function run(id: string, action: "start" | "validate") {
  const res = await client.request("POST", `/v1/imports/${id}/${action}`);
  expect(res.status).toBe(202);
  return waitForImport(client, id);
}

const EXPECTED_ERRORS = [
  { row: 3, column: "Email", value: "ghost@example.com", code: "unknown_person", message: "No person has this email; set options.createMissingPeople to create them." },
  { row: 4, column: "Timestamp", value: "yesterday", code: "invalid_date", message: '"yesterday" is not a date and time (use ISO-8601, e.g. 2024-03-01T10:00:00Z).' },
  { row: 5, column: "Event Name", value: "", code: "missing_event", message: "The event name is empty." },
];

describe("events import", () => {
  let importId: string;

  it("dry run reports unknown people and bad dates and writes nothing", async () => {
    const imp = await createEventsImport(FILE);
    importId = imp.id;
    expect(imp.suggestedMapping).toEqual({ Email: "email", "Event Name": "event", Timestamp: "occurred_at", Plan: "property:plan", Amount: "property:amount" });
    const done = await run(imp.id, "validate");
    expect(done.status).toBe("validated");
    expect(done.counts).toEqual({ total: 6, processed: 6, created: 3, updated: 0, unchanged: 0, skipped: 0, failed: 3 });
    expect(done.errors).toEqual(EXPECTED_ERRORS);
    const [n] = await t.ctx.db.$client`select count(*)::int as n from events where workspace_id = ${client.workspaceId}`;
    expect(n!.n).toBe(0);
  });

  it("writes one event per good row with properties; a time without offset is UTC", async () => {
    const done = await run(importId, "start");
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: 6, processed: 6, created: 3, updated: 0, unchanged: 0, skipped: 0, failed: 3 });
    expect(done.errors).toEqual(EXPECTED_ERRORS);
    expect(await eventsOf(importId)).toEqual([
      [1, "Ada@example.com", "Clicked Upgrade", "2026-11-20T10:00:00.000Z", { plan: "pro", amount: "12.5" }],
      [2, "Ada@example.com", "Clicked Upgrade", "2026-11-21T10:00:00.000Z", { plan: "pro" }],
      [6, "alan@example.com", "Viewed Pricing", "2024-11-19T07:06:40.000Z", { amount: "3" }],
    ]);
    const csv = await client.request("GET", `/v1/imports/${importId}/errors`);
    expect(csv.body.trim().split("\n")).toEqual([
      "row,column,value,code,message,Email,Event Name,Timestamp,Plan,Amount",
      "3,Email,ghost@example.com,unknown_person,No person has this email; set options.createMissingPeople to create them.,ghost@example.com,Clicked Upgrade,2026-11-21,free,1",
      '4,Timestamp,yesterday,invalid_date,"""yesterday"" is not a date and time (use ISO-8601, e.g. 2024-03-01T10:00:00Z).",alan@example.com,Viewed Pricing,yesterday,,',
      "5,Event Name,,missing_event,The event name is empty.,alan@example.com,,2026-11-21,,",
    ]);
    // Events imports write no person.created / person.updated events and change no one.
    const [people] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}`;
    expect(people!.n).toBe(2);
  });

  it("a replay of the same rows writes nothing twice", async () => {
    // As if the run had crashed and lost its checkpoint: the whole file is read again from row 1.
    await t.ctx.db.$client`update imports set status = 'failed', checkpoint_row = 0 where id = ${importId}`;
    const done = await run(importId, "start");
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: 6, processed: 6, created: 0, updated: 0, unchanged: 3, skipped: 0, failed: 3 });
    expect(await eventsOf(importId)).toHaveLength(3);
    const [n] = await t.ctx.db.$client`select count(*)::int as n from events where workspace_id = ${client.workspaceId}`;
    expect(n!.n).toBe(3);
  });

  it("creates unknown people when options say so, with their other identity columns", async () => {
    const csv = [
      "Email,user_id,event,occurred_at",
      "nia@example.com,u-nia,Signed Up,2026-03-29 01:30",
      "NIA@example.com,u-nia,Logged In,2026-03-29T03:30:00",
      "ola@example.com,u-ada,Signed Up,2026-03-29",
      "ada@example.com,u-other,Logged In,2026-03-30T00:00:00+02:00",
    ].join("\n");
    const imp = await createEventsImport(csv, { options: { createMissingPeople: true, timezone: "Europe/Paris" } });
    expect(imp.mapping).toEqual({ Email: "email", user_id: "external_id", event: "event", occurred_at: "occurred_at" });
    const done = await run(imp.id, "start");
    expect(done.counts).toEqual({ total: 4, processed: 4, created: 3, updated: 0, unchanged: 0, skipped: 0, failed: 1 });
    expect(done.errors).toEqual([
      { row: 3, column: "user_id", value: "u-ada", code: "conflict", message: "The person is new, but another person already has this external id." },
    ]);
    // Times without an offset are read in the import's time zone (Paris: UTC+1 until 02:00 on 29 March, then UTC+2).
    expect(await eventsOf(imp.id)).toEqual([
      [1, "NIA@example.com", "Signed Up", "2026-03-29T00:30:00.000Z", {}],
      [2, "NIA@example.com", "Logged In", "2026-03-29T01:30:00.000Z", {}],
      [4, "Ada@example.com", "Logged In", "2026-03-29T22:00:00.000Z", {}],
    ]);
    const people = await t.ctx.db.$client`select email, external_id from people where workspace_id = ${client.workspaceId} order by id`;
    expect(people.map((p) => [p.email, p.external_id])).toEqual([
      ["Ada@example.com", "u-ada"],
      ["alan@example.com", "u-alan"],
      // Several rows name the new person: as everywhere in imports, the later row's identity columns win.
      ["NIA@example.com", "u-nia"],
    ]);
  });

  it("createSegment makes a static segment of the people the events belong to", async () => {
    const csv = "external_id,event\nu-ada,Opened App\nu-alan,Opened App\nu-ada,Closed App\nu-nobody,Opened App\n";
    const imp = await createEventsImport(csv, { identifier: "external_id", options: { createSegment: { name: "Opened the app" } } });
    const done = await run(imp.id, "start");
    expect(done.counts).toMatchObject({ created: 3, failed: 1 });
    expect(done.segmentIds).toHaveLength(1);
    const members = await t.ctx.db.$client`
      select p.external_id from segment_memberships m join people p on p.id = m.person_id
      where m.segment_id = ${done.segmentIds[0]} order by p.external_id`;
    expect(members.map((m) => m.external_id)).toEqual(["u-ada", "u-alan"]);
  });

  it("a dry run with createMissingPeople creates no one", async () => {
    const imp = await createEventsImport("email,event\nzed@example.com,Signed Up\n", { options: { createMissingPeople: true } });
    const done = await run(imp.id, "validate");
    expect(done.counts).toMatchObject({ total: 1, created: 1, failed: 0 });
    const [n] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and email = 'zed@example.com'`;
    expect(n!.n).toBe(0);
  });
});
