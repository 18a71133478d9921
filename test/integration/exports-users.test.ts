import { stringify } from "csv-stringify/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { csvRows, download, runExportVia, waitForExport } from "../helpers/exports.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let a: Client;
let b: Client;
let workers: WorkerPool;
let betaSegmentId: string;

const SOURCE = [
  ["email", "external_id", "first_name", "last_name", "name", "company_id", "labels", "plan", "balance", "note", "formula"],
  ["ada@example.com", "u1", "Ada", "Lovelace", "Ada Lovelace", "c-1", "VIP:Beta", "pro", "-12.5", "plain", "-1+2"],
  ["bob@example.com", "u2", "=SUM(A1:A9)", "+44 20 7946", "@bob", "-12.5", "=Risky", "=cmd|' /C calc'!A0", "+3", "-7", "\t=tab first"],
  ["carol@example.com", "", "Carol", "-Dash", "", "", "", "free", "1e3", "line one\nline two", "\nlf first"],
];

async function people(workspaceId: string) {
  return t.ctx.db.$client`
    select p.email, p.external_id, p.username, p.first_name, p.last_name, p.name, p.company_id, p.attributes,
      coalesce((select array_agg(l.name order by l.name) from labels l where l.id = any(p.label_ids)), '{}') as labels
    from people p where p.workspace_id = ${workspaceId} order by lower(p.email)`;
}

beforeAll(async () => {
  a = await createClient(t.ctx, undefined, "A");
  b = await createClient(t.ctx, a.app, "B");
  workers = await startTestWorkers(t.ctx);
  const imported = await pasteImport(a, stringify(SOURCE), { identifier: "email", start: true });
  expect(imported.status).toBe(201);
  const done = await waitForImport(a, imported.json.id);
  expect(done.counts).toMatchObject({ created: 3, failed: 0 });
  // A value that already starts with an apostrophe before a formula character must survive the round trip too.
  await t.ctx.db.$client`update people set username = ${"'=already quoted"} where workspace_id = ${a.workspaceId} and email = 'carol@example.com'`;
  const [seg] = await t.ctx.db.$client`insert into segments (workspace_id, name, type) values (${a.workspaceId}, 'Beta testers', 'static') returning id`;
  betaSegmentId = seg!.id as string;
  await t.ctx.db.$client`
    insert into segment_memberships (workspace_id, segment_id, person_id)
    select ${a.workspaceId}, ${betaSegmentId}, id from people where workspace_id = ${a.workspaceId} and email in ('ada@example.com', 'carol@example.com')`;
  const [other] = await t.ctx.db.$client`insert into segments (workspace_id, name, type) values (${a.workspaceId}, '@Churn', 'static') returning id`;
  await t.ctx.db.$client`
    insert into segment_memberships (workspace_id, segment_id, person_id)
    select ${a.workspaceId}, ${other!.id}, id from people where workspace_id = ${a.workspaceId} and email = 'ada@example.com'`;
});
afterAll(async () => {
  await workers?.close();
  await a?.app.close();
});

describe("users export", () => {
  it("writes the default columns (native fields plus labels) and reports rowCount, sizeBytes and expiresAt", async () => {
    const created = await a.request("POST", "/v1/exports", { payload: { kind: "users" } });
    expect(created.status).toBe(202);
    expect(created.headers.location).toBe(`/v1/exports/${created.json.id}`);
    expect(created.json).toMatchObject({ kind: "users", status: "queued", rowCount: null, sizeBytes: null, finishedAt: null, expiresAt: null });
    const done = await waitForExport(a, created.json.id);
    expect(done.status).toBe("done");
    expect(done.rowCount).toBe(3);
    expect(done.columns).toEqual(["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"]);
    const ttl = Date.parse(done.expiresAt) - Date.parse(done.finishedAt);
    expect(ttl).toBe(7 * 24 * 3600 * 1000);

    const file = await download(a, done.id);
    expect(file.status).toBe(200);
    expect(file.headers["content-type"]).toBe("text/csv; charset=utf-8");
    expect(file.headers["content-disposition"]).toMatch(new RegExp(`^attachment; filename="roster-users-\\d{4}-\\d{2}-\\d{2}-${done.id}\\.csv"$`));
    expect(Number(file.headers["content-length"])).toBe(file.raw.length);
    expect(file.raw.length).toBe(done.sizeBytes);
    expect(file.raw.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf]))).toBe(false);
    expect(csvRows(file.text)).toEqual([
      ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"],
      ["ada@example.com", "u1", "", "Ada", "Lovelace", "Ada Lovelace", "c-1", "Beta:VIP"],
      ["bob@example.com", "u2", "", "'=SUM(A1:A9)", "'+44 20 7946", "'@bob", "-12.5", "'=Risky"],
      ["carol@example.com", "", "''=already quoted", "Carol", "'-Dash", "", "", ""],
    ]);
  });

  it("writes the chosen columns in the chosen order: id, timestamps, segments and attributes", async () => {
    const done = await runExportVia(a, {
      kind: "users",
      columns: ["attributes.plan", "email", "id", "segments", "created_at", "attributes.balance", "attributes.missing", "last_seen_at"],
    });
    expect(done.status).toBe("done");
    const rows = csvRows((await download(a, done.id)).text);
    expect(rows[0]).toEqual(["attributes.plan", "email", "id", "segments", "created_at", "attributes.balance", "attributes.missing", "last_seen_at"]);
    const ids = await t.ctx.db.$client`
      select id::text, floor(extract(epoch from created_at) * 1000)::bigint::text as ms from people where workspace_id = ${a.workspaceId} order by id`;
    const iso = (i: number) => new Date(Number(ids[i]!.ms)).toISOString();
    expect(rows.slice(1)).toEqual([
      ["pro", "ada@example.com", ids[0]!.id, "'@Churn:Beta testers", iso(0), "-12.5", "", ""],
      ["'=cmd|' /C calc'!A0", "bob@example.com", ids[1]!.id, "", iso(1), "+3", "", ""],
      ["free", "carol@example.com", ids[2]!.id, "Beta testers", iso(2), "1e3", "", ""],
    ]);
  });

  it("neutralises every cell a spreadsheet would run as a formula, and keeps plain numbers", async () => {
    const done = await runExportVia(a, { kind: "users", columns: ["email", "attributes.formula", "attributes.balance", "attributes.note"] });
    const rows = csvRows((await download(a, done.id)).text);
    expect(rows.slice(1)).toEqual([
      ["ada@example.com", "'-1+2", "-12.5", "plain"],
      ["bob@example.com", "'\t=tab first", "+3", "-7"],
      ["carol@example.com", "'\nlf first", "1e3", "line one\nline two"],
    ]);
  });

  it("limits the export to a segment's members", async () => {
    const done = await runExportVia(a, { kind: "users", segmentId: betaSegmentId, columns: ["email"] });
    expect(done.rowCount).toBe(2);
    expect(done.filters.segmentId).toBe(betaSegmentId);
    expect(csvRows((await download(a, done.id)).text)).toEqual([["email"], ["ada@example.com"], ["carol@example.com"]]);
  });

  it("gzips and adds a UTF-8 BOM when asked", async () => {
    const done = await runExportVia(a, { kind: "users", columns: ["email", "first_name"], gzip: true, bom: true });
    const file = await download(a, done.id);
    expect(file.headers["content-type"]).toBe("application/gzip");
    expect(file.headers["content-disposition"]).toMatch(/\.csv\.gz"$/);
    expect(Number(file.headers["content-length"])).toBe(file.raw.length);
    expect(file.raw.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
    expect(file.text.startsWith("\ufeffemail,first_name\n")).toBe(true);
    expect(csvRows(file.text)).toHaveLength(4);
  });

  it("round trip: the default export plus attributes imports into another workspace as the same people", async () => {
    const done = await runExportVia(a, {
      kind: "users",
      columns: ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels", "attributes.plan", "attributes.balance", "attributes.note", "attributes.formula"],
      bom: true,
    });
    const file = await download(a, done.id);
    const imported = await pasteImport(b, file.text, { identifier: "email" });
    expect(imported.status).toBe(201);
    // No manual mapping: every exported header maps back by itself.
    expect(imported.json.suggestedMapping).toEqual({
      email: "email",
      external_id: "external_id",
      username: "username",
      first_name: "first_name",
      last_name: "last_name",
      name: "name",
      company_id: "company_id",
      labels: "labels",
      "attributes.plan": "attribute:plan",
      "attributes.balance": "attribute:balance",
      "attributes.note": "attribute:note",
      "attributes.formula": "attribute:formula",
    });
    await b.request("PUT", `/v1/imports/${imported.json.id}/mapping`, { payload: { identifier: "email", mapping: imported.json.suggestedMapping } });
    await b.request("POST", `/v1/imports/${imported.json.id}/start`);
    const finished = await waitForImport(b, imported.json.id);
    expect(finished.counts).toMatchObject({ created: 3, failed: 0 });
    const original = await people(a.workspaceId);
    expect(original).toHaveLength(3);
    expect(await people(b.workspaceId)).toEqual(original);
  });
});

describe("users export filtered by conditions", () => {
  async function emails(body: Record<string, unknown>): Promise<{ rowCount: number; emails: string[] }> {
    const done = await runExportVia(a, { kind: "users", columns: ["email"], ...body });
    expect(done.status).toBe("done");
    const rows = csvRows((await download(a, done.id)).text);
    expect(rows.length - 1).toBe(done.rowCount);
    return { rowCount: done.rowCount, emails: rows.slice(1).map((r) => r[0]!) };
  }

  it("exports only the people matching a condition tree over attributes and labels", async () => {
    const conditions = { all: [{ field: "attributes.plan", op: "eq", value: "pro" }, { label: "VIP", op: "has" }] };
    expect(await emails({ conditions })).toEqual({ rowCount: 1, emails: ["ada@example.com"] });
  });

  it("supports not, any and segment conditions", async () => {
    expect((await emails({ conditions: { not: { segment: betaSegmentId, op: "in" } } })).emails).toEqual(["bob@example.com"]);
    const any = { any: [{ field: "email", op: "starts_with", value: "BOB" }, { field: "last_name", op: "eq", value: "Lovelace" }] };
    expect((await emails({ conditions: any })).emails).toEqual(["ada@example.com", "bob@example.com"]);
  });

  it("applies segmentId and conditions together", async () => {
    const conditions = { field: "first_name", op: "eq", value: "Carol" };
    expect(await emails({ segmentId: betaSegmentId, conditions })).toEqual({ rowCount: 1, emails: ["carol@example.com"] });
  });

  it("binds condition values as parameters: quoting in a value is only text", async () => {
    const conditions = { field: "email", op: "eq", value: "x'); delete from people; --" };
    expect(await emails({ conditions })).toEqual({ rowCount: 0, emails: [] });
    expect(await t.ctx.db.$client`select 1 from people where workspace_id = ${a.workspaceId}`).toHaveLength(3);
  });

  it("stores the conditions on the export and shows them", async () => {
    const conditions = { field: "created_at", op: "within_last", value: { amount: 1, unit: "day" } };
    const done = await runExportVia(a, { kind: "users", columns: ["email"], conditions });
    expect(done.rowCount).toBe(3);
    expect(done.filters.conditions).toEqual(conditions);
  });
});

describe("workspace isolation", () => {
  it("another workspace's export answers 404 to GET and download, and its segment 404 to POST", async () => {
    const done = await runExportVia(a, { kind: "users", columns: ["email"] });
    expect((await b.request("GET", `/v1/exports/${done.id}`)).status).toBe(404);
    const dl = await download(b, done.id);
    expect(dl.status).toBe(404);
    expect(JSON.parse(dl.text).error.code).toBe("not_found");
    const listed = await b.request("GET", "/v1/exports");
    expect(listed.json.data.map((e: { id: string }) => e.id)).not.toContain(done.id);
    const seg = await b.request("POST", "/v1/exports", { payload: { kind: "users", segmentId: betaSegmentId } });
    expect(seg.status).toBe(404);
    expect(seg.json.error.code).toBe("not_found");
    const cond = await b.request("POST", "/v1/exports", { payload: { kind: "users", conditions: { segment: betaSegmentId, op: "in" } } });
    expect(cond.status).toBe(404);
    expect(cond.json.error).toMatchObject({ code: "not_found", details: { field: "conditions" } });
  });
});
