import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { csvRows, download, runExportVia } from "../helpers/exports.js";
import { emailKey } from "../../src/domain/people/email.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let a: Client;
let b: Client;
let workers: WorkerPool;
const ids: Record<string, string> = {};

async function person(workspaceId: string, email: string, externalId: string | null): Promise<string> {
  const [row] = await t.ctx.db.$client`insert into people (workspace_id, email, email_key, external_id) values (${workspaceId}, ${email}, ${emailKey(email)}, ${externalId}) returning id::text`;
  return row!.id as string;
}

async function event(workspaceId: string, personId: string, name: string, at: string, properties: Record<string, unknown> = {}) {
  await t.ctx.db.$client`
    insert into events (workspace_id, person_id, name, occurred_at, properties)
    values (${workspaceId}, ${personId}, ${name}, ${at}::timestamptz, ${JSON.stringify(properties)}::jsonb)`;
}

beforeAll(async () => {
  a = await createClient(t.ctx, undefined, "A");
  b = await createClient(t.ctx, a.app, "B");
  workers = await startTestWorkers(t.ctx);
  ids.ada = await person(a.workspaceId, "ada@example.com", "u1");
  ids.bob = await person(a.workspaceId, "bob@example.com", "=u2");
  await event(a.workspaceId, ids.ada, "Signed Up", "2026-01-01T00:00:00Z", { plan: "pro" });
  await event(a.workspaceId, ids.ada, "Clicked Upgrade", "2026-01-15T12:00:00Z");
  await event(a.workspaceId, ids.bob, "=HYPERLINK(\"x\")", "2026-01-20T08:30:00.250Z", { n: -12.5 });
  // Exactly at `to` in the range test below: excluded, since to is exclusive.
  await event(a.workspaceId, ids.bob, "Clicked Upgrade", "2026-02-01T00:00:00Z");
  const other = await person(b.workspaceId, "ada@example.com", "u1");
  await event(b.workspaceId, other, "Clicked Upgrade", "2026-01-16T00:00:00Z");
});
afterAll(async () => {
  await workers?.close();
  await a?.app.close();
});

describe("events export", () => {
  it("exports every event of the workspace, oldest first, with all columns by default", async () => {
    const done = await runExportVia(a, { kind: "events" });
    expect(done).toMatchObject({ status: "done", rowCount: 4, columns: ["occurred_at", "event", "user_id", "external_id", "email", "properties"] });
    expect(csvRows((await download(a, done.id)).text)).toEqual([
      ["occurred_at", "event", "user_id", "external_id", "email", "properties"],
      ["2026-01-01T00:00:00.000Z", "Signed Up", ids.ada, "u1", "ada@example.com", '{"plan": "pro"}'],
      ["2026-01-15T12:00:00.000Z", "Clicked Upgrade", ids.ada, "u1", "ada@example.com", "{}"],
      ["2026-01-20T08:30:00.250Z", "'=HYPERLINK(\"x\")", ids.bob, "'=u2", "bob@example.com", '{"n": -12.5}'],
      ["2026-02-01T00:00:00.000Z", "Clicked Upgrade", ids.bob, "'=u2", "bob@example.com", "{}"],
    ]);
  });

  it("filters by event names and a UTC range, from inclusive and to exclusive", async () => {
    const done = await runExportVia(a, {
      kind: "events",
      events: ["Clicked Upgrade"],
      from: "2026-01-15T12:00:00Z",
      to: "2026-02-01T00:00:00Z",
      columns: ["email", "occurred_at"],
    });
    expect(done.rowCount).toBe(1);
    expect(done.filters).toMatchObject({ events: ["Clicked Upgrade"], from: "2026-01-15T12:00:00.000Z", to: "2026-02-01T00:00:00.000Z" });
    expect(csvRows((await download(a, done.id)).text)).toEqual([["email", "occurred_at"], ["ada@example.com", "2026-01-15T12:00:00.000Z"]]);
  });

  it("reads from/to with an offset as the instant it names", async () => {
    const done = await runExportVia(a, { kind: "events", from: "2026-01-20T09:30:00.250+01:00", columns: ["event"] });
    expect(csvRows((await download(a, done.id)).text)).toEqual([["event"], ["'=HYPERLINK(\"x\")"], ["Clicked Upgrade"]]);
  });

  it("filters by several names, one of them formula-like, and counts only what it wrote", async () => {
    const done = await runExportVia(a, { kind: "events", events: ["Signed Up", '=HYPERLINK("x")', "Never Happened"], columns: ["event"] });
    expect(done.rowCount).toBe(2);
    expect(csvRows((await download(a, done.id)).text)).toEqual([["event"], ["Signed Up"], ["'=HYPERLINK(\"x\")"]]);
  });

  it("writes a header only when nothing matches", async () => {
    const done = await runExportVia(a, { kind: "events", to: "2025-01-01T00:00:00Z" });
    expect(done.rowCount).toBe(0);
    expect((await download(a, done.id)).text).toBe("occurred_at,event,user_id,external_id,email,properties\n");
  });

  it("takes date-only from/to as imports do (midnight UTC; to exclusive)", async () => {
    const done = await runExportVia(a, { kind: "events", from: "2026-01-15", to: "2026-02-01", columns: ["occurred_at", "event"] });
    expect(done.filters).toMatchObject({ from: "2026-01-15T00:00:00.000Z", to: "2026-02-01T00:00:00.000Z" });
    expect(csvRows((await download(a, done.id)).text)).toEqual([
      ["occurred_at", "event"],
      ["2026-01-15T12:00:00.000Z", "Clicked Upgrade"],
      ["2026-01-20T08:30:00.250Z", "'=HYPERLINK(\"x\")"],
    ]);
  });

  it("refuses users-only fields, unknown columns and an empty range with 422", async () => {
    const seg = await a.request("POST", "/v1/exports", { payload: { kind: "events", segmentId: "x", columns: ["event", "labels"] } });
    expect(seg.status).toBe(422);
    expect(seg.json.error.code).toBe("invalid_export");
    expect(seg.json.error.details.problems).toEqual([
      { field: "segmentId", reason: "Only for users exports, not events." },
      { field: "columns.1", reason: 'Unknown column "labels": use occurred_at, event, user_id, external_id, email, properties.' },
    ]);
    const range = await a.request("POST", "/v1/exports", { payload: { kind: "events", from: "2026-02-01T00:00:00Z", to: "2026-02-01T00:00:00Z" } });
    expect(range.status).toBe(422);
    expect(range.json.error.details.problems).toEqual([{ field: "to", reason: "Must be later than from (from is inclusive, to exclusive)." }]);
    const bad = await a.request("POST", "/v1/exports", { payload: { kind: "events", from: "yesterday" } });
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe("invalid_request");
    expect(bad.json.error.details.problems[0].field).toBe("body.from");
  });
});
