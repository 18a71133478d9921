import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { createClient, errorReport, importAndWait, pasteImport, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { eq } from "drizzle-orm";
import { imports } from "../../src/db/schema.js";
import { createImportFromUpload, storeUpload, type NewImportInput } from "../../src/domain/imports/intake.js";

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

async function people(ws = client.workspaceId) {
  return t.ctx.db.$client`select email, first_name, attributes from people where workspace_id = ${ws} order by lower(email)`;
}

async function uploadFiles(): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string) {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  }
  await walk(path.join(t.ctx.storageDir, "uploads"));
  return out;
}

describe("intake refuses files it cannot read, naming the problem", () => {
  it("duplicate header names → 422 naming them, and nothing is kept", async () => {
    const before = await uploadFiles();
    const res = await pasteImport(client, "email,Name,name,Name\na@x.io,1,2,3\n");
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("duplicate_header");
    expect(res.json.error.message).toContain("Name");
    expect(await uploadFiles()).toEqual(before);
  });

  it("an empty header name → 422 naming its position", async () => {
    const res = await pasteImport(client, "email,,last_name\na@x.io,1,2\n");
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("empty_header");
    expect(res.json.error.message).toMatch(/column 2/i);
  });

  it("an empty file → 422 empty_file", async () => {
    const res = await pasteImport(client, "");
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("empty_file");
  });

  it("an invalid mapping → 422 listing every problem at once", async () => {
    const res = await pasteImport(client, "email,plan,seg_value\na@x.io,pro,3\n", {
      identifier: "username",
      mapping: { email: "email", plan: "email", seg_value: "segment_value", nope: "first_name" },
    });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_mapping");
    const fields = (res.json.error.details.problems as { field: string }[]).map((p) => p.field).sort();
    expect(fields).toEqual(["identifier", "mapping.nope", "mapping.plan", "mapping.seg_value"]);
  });

  it("start=true without identifier or mapping → 422 mapping_required, and no import or file is kept", async () => {
    const count = async () => Number((await t.ctx.db.$client`select count(*)::int as n from imports where workspace_id = ${client.workspaceId}`)[0]?.n);
    const before = await uploadFiles();
    const importsBefore = await count();
    const res = await pasteImport(client, "email,first_name\nstart@x.io,Start\n", { start: true });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("mapping_required");
    expect(await count()).toBe(importsBefore);
    expect(await uploadFiles()).toEqual(before);
  });

  it("start=true with a mapping answers 201 queued, and the row already says queued with its queuedAt", async () => {
    const res = await pasteImport(client, "email,first_name\nqueued@x.io,Queued\n", { identifier: "email", start: true });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ status: "queued", errors: [], identifier: "email", dryRun: false });
    const [row] = await t.ctx.db.$client`select status, queued_at is not null as queued, dry_run from imports where id = ${res.json.id}`;
    expect(row).toMatchObject({ queued: true, dry_run: false });
  });

  it("the new import is answered as stored: createImportFromUpload's row is what a select gives, POST's answer is GET's", async () => {
    // The insert returns only what the database fills (id, created_at); the rest of the row is the values sent and the
    // schema's defaults, so it must be checked against the stored row, column by column.
    const cases: { csv: string; input: Partial<NewImportInput> }[] = [
      { csv: "email,first_name,plan\nrow@x.io,Row,pro\n", input: {} },
      { csv: "email;first_name;plan\r\nrow@x.io;Row;pro\r\n", input: { identifier: "email", mapping: { plan: "attribute:tier" }, options: { mode: "create_only" }, start: true } },
      { csv: "\ufeffemail,city\nrow@x.io,Zürich\n", input: { identifier: "email", mapping: "suggested", filename: "people.csv" } },
    ];
    for (const { csv, input } of cases) {
      const upload = await storeUpload(t.ctx.storage, client.workspaceId, Buffer.from(csv, "utf8"), 1_000_000);
      const row = await createImportFromUpload(t.ctx.db, t.ctx.storage, client.workspaceId, upload, { kind: "contacts", filename: null, ...input });
      const [stored] = await t.ctx.db.select().from(imports).where(eq(imports.id, row.id));
      expect(row).toEqual(stored);
    }
    const res = await pasteImport(client, "email,first_name\ndraft@x.io,Draft\n", { filename: "draft.csv" });
    expect(res.status, res.body).toBe(201);
    const got = await client.request("GET", `/v1/imports/${res.json.id}`);
    expect(res.json).toEqual(got.json);
  });

  it("trailing unnamed header cells (Email;Name;;) are dropped; a row with data under them later fails alone as ragged", async () => {
    const rows = Array.from({ length: 6 }, (_, i) => `tail${i}@x.io;T${i};;`);
    const csv = ["Email;First Name;;", ...rows, "tailx@x.io;X;;lost?", "taily@x.io;Y", ""].join("\r\n");
    const res = await pasteImport(client, csv, { identifier: "email", start: true });
    expect(res.status, res.body).toBe(201);
    expect(res.json).toMatchObject({ headers: ["Email", "First Name"], mapping: { Email: "email", "First Name": "first_name" } });
    expect(res.json.sample[0]).toEqual(["tail0@x.io", "T0"]);
    const done = await waitDone(res.json.id);
    expect(done.counts).toMatchObject({ total: 8, created: 7, failed: 1 });
    expect(done.errors).toEqual([expect.objectContaining({ row: 7, code: "ragged_row", value: "tailx@x.io;X;;lost?" })]);
    const names = await t.ctx.db.$client`select first_name from people where workspace_id = ${client.workspaceId} and email like 'tail%' order by email`;
    expect(names.map((r) => r.first_name)).toEqual(["T0", "T1", "T2", "T3", "T4", "T5", "Y"]);
  });

  it("a body that is neither CSV, multipart nor JSON → 415", async () => {
    const res = await client.request("POST", "/v1/imports", { payload: "<xml/>", headers: { "content-type": "application/xml" } });
    expect(res.status).toBe(415);
    expect(res.json.error.code).toBe("unsupported_media_type");
  });
});

describe("encodings and dialects are sniffed and reported", () => {
  it("Windows-1252 bytes are decoded (é, €) and the import says so", async () => {
    const bytes = Buffer.concat([Buffer.from("email;first_name\r\nzoe@x.io;Zo"), Buffer.from([0xe9]), Buffer.from("\r\neur@x.io;"), Buffer.from([0x80]), Buffer.from("uro\r\n")]);
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: bytes, headers: { "content-type": "text/csv" } });
    expect(res.status).toBe(201);
    expect(res.json.encoding).toBe("windows-1252");
    expect(res.json.delimiter).toBe(";");
    const done = await waitDone(res.json.id);
    expect(done.counts.created).toBe(2);
    const rows = await t.ctx.db.$client`select first_name from people where workspace_id = ${client.workspaceId} and email in ('zoe@x.io', 'eur@x.io') order by email`;
    expect(rows.map((r) => r.first_name)).toEqual(["€uro", "Zoé"]);
  });

  it("UTF-16LE with a BOM, tab-delimited, mixed line endings", async () => {
    const text = "email\tfirst_name\r\nu16a@x.io\tÅsa\nu16b@x.io\tBo\r";
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: bytes, headers: { "content-type": "text/csv" } });
    expect(res.status).toBe(201);
    expect(res.json.encoding).toBe("utf-16le");
    expect(res.json.delimiter).toBe("\t");
    expect(res.json.headers).toEqual(["email", "first_name"]);
    const done = await waitDone(res.json.id);
    expect(done.counts).toMatchObject({ total: 2, created: 2, failed: 0 });
    const rows = await t.ctx.db.$client`select first_name from people where workspace_id = ${client.workspaceId} and email like 'u16%' order by email`;
    expect(rows.map((r) => r.first_name)).toEqual(["Åsa", "Bo"]);
  });

  it("a UTF-8 BOM does not end up in the first header; quoted delimiters and newlines stay in their cell", async () => {
    const csv = '\ufeffemail,first_name,attr\nq1@x.io,"Smith, Jo","line one\nline two"\n';
    const done = await importAndWait(client, csv);
    expect(done.headers).toEqual(["email", "first_name", "attr"]);
    expect(done.counts).toMatchObject({ created: 1, failed: 0 });
    const [p] = await t.ctx.db.$client`select first_name, attributes from people where workspace_id = ${client.workspaceId} and email = 'q1@x.io'`;
    expect(p?.first_name).toBe("Smith, Jo");
    expect(p?.attributes).toEqual({ attr: "line one\nline two" });
  });
});

describe("row errors: good rows go in, every bad row is reported with row, column, value and reason", () => {
  let done: any;
  let report: Record<string, string>[];
  const csv = [
    "email,first_name,score,vip,joined,label_ids,plan",
    "good1@x.io,Ann,10,yes,2024-01-31,,pro", // 1 ok
    "not-an-email,Bob,1,no,2024-01-01,,", // 2 invalid_email
    ",Cid,1,no,2024-01-01,,", // 3 missing_identifier
    "good2@x.io,Dee,ten,maybe,31/31/2024,,", // 4 invalid_number, invalid_boolean, invalid_date
    "good3@x.io,Eve,1,no,2024-01-01,999999,", // 5 unknown_label_id
    `good4@x.io,${"F".repeat(1001)},1,no,2024-01-01,,`, // 6 too_long
    "good5@x.io,G\u0000il,1,no,2024-01-01,,", // 7 nul_byte
    "good6@x.io,Hal,1,no,2024-01-01,,,extra", // 8 ragged (too many)
    "good7@x.io,Ivy", // 9 ragged (too few)
    ",,,,,,", // 10 empty row: skipped
    "GOOD8@X.IO ,Jo,2.5,1,03/15/2024 10:30,,free", // 11 ok (email trimmed, US date)
  ].join("\n");

  beforeAll(async () => {
    done = await importAndWait(client, csv, {
      options: { attributeTypes: { score: "number", vip: "boolean", joined: "date" } },
      mapping: { email: "email", first_name: "first_name", score: "attribute:score", vip: "attribute:vip", joined: "attribute:joined", label_ids: "label_ids", plan: "attribute:plan" },
    });
    report = await errorReport(client, done.id);
  });

  it("the import is done with exact counts", () => {
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: 11, processed: 11, created: 2, updated: 0, unchanged: 0, skipped: 1, failed: 8 });
  });

  it("each error names row, column, value and code", () => {
    const got = report.map((e) => [e.row, e.column, e.code, (e.value ?? "").slice(0, 20)]);
    expect(got).toEqual([
      ["2", "email", "invalid_email", "not-an-email"],
      ["3", "email", "missing_identifier", ""],
      ["4", "score", "invalid_number", "ten"],
      ["4", "vip", "invalid_boolean", "maybe"],
      ["4", "joined", "invalid_date", "31/31/2024"],
      ["5", "label_ids", "unknown_label_id", "999999"],
      ["6", "first_name", "too_long", "F".repeat(20)],
      ["7", "first_name", "nul_byte", "G\\0il"],
      ["8", "", "ragged_row", "good6@x.io,Hal,1,no,"],
      ["9", "", "ragged_row", "good7@x.io,Ivy"],
      ["10", "", "empty_row", ""],
    ]);
    expect(report.every((e) => (e.message ?? "").length > 10)).toBe(true);
    expect(done.errors).toHaveLength(11);
    expect(done.errors[0]).toMatchObject({ row: 2, column: "email", value: "not-an-email", code: "invalid_email" });
  });

  it("good rows are written with typed attributes", async () => {
    const rows = await people();
    const byEmail = Object.fromEntries(rows.map((r) => [String(r.email).toLowerCase(), r]));
    expect(byEmail["good1@x.io"]?.attributes).toEqual({ score: 10, vip: true, joined: "2024-01-31T00:00:00.000Z", plan: "pro" });
    expect(byEmail["good8@x.io"]?.email).toBe("GOOD8@X.IO");
    expect(byEmail["good8@x.io"]?.attributes).toEqual({ score: 2.5, vip: true, joined: "2024-03-15T10:30:00.000Z", plan: "free" });
    expect(byEmail["good2@x.io"]).toBeUndefined();
  });

  it("the error CSV repeats each failed row's cells; fixed and uploaded again as is, it imports", async () => {
    expect(Object.keys(report[0]!)).toEqual(["row", "column", "value", "code", "message", "email", "first_name", "score", "vip", "joined", "label_ids", "plan"]);
    expect(report[0]).toMatchObject({ email: "not-an-email", first_name: "Bob", score: "1" });
    expect(report.find((e) => e.code === "empty_row")).toMatchObject({ email: "", first_name: "" });
    // A row the database failed (its cells are read again from the file for the report) is repeated the same way.
    expect(report.find((e) => e.code === "unknown_label_id")).toMatchObject({ email: "good3@x.io", first_name: "Eve", label_ids: "999999" });
    // Fix the report the way a person would: correct the cells, upload the file again.
    const res = await client.request("GET", `/v1/imports/${done.id}/errors`);
    const fixed = res.body
      .replace("not-an-email,Bob", "bob@x.io,Bob")
      .replaceAll("ten,maybe,31/31/2024", "10,no,2024-01-31")
      .replaceAll(",999999,", ",,");
    const again = await pasteImport(client, fixed, { identifier: "email", start: true, options: { attributeTypes: { score: "number", vip: "boolean", joined: "date" } } });
    expect(again.status).toBe(201);
    expect(again.json.suggestedMapping).toMatchObject({ row: "ignore", column: "ignore", value: "ignore", code: "ignore", message: "ignore", email: "email" });
    const second = await waitDone(again.json.id);
    expect(second.status).toBe("done");
    // bob, good2 (fixed) and good3 (label removed) now go in, and good5 whose NUL byte the report shows as the text \0;
    // good4 is still too long; ragged rows repeat no cells (their raw line is the value to fix) and are skipped as empty.
    // Row 4 had three errors, so three lines: the last wins, the two before are skipped as duplicates.
    expect(second.counts).toEqual({ total: 11, processed: 11, created: 4, updated: 0, unchanged: 0, skipped: 5, failed: 2 });
    const emails = (await people()).map((r) => String(r.email).toLowerCase());
    expect(emails).toEqual(expect.arrayContaining(["bob@x.io", "good2@x.io", "good3@x.io"]));
  });
});

describe("error storage is bounded", () => {
  it("keeps the first 10,000 errors and counts them all; the import object carries the first 100", async () => {
    const bad = Array.from({ length: 10_050 }, (_, i) => `bad-${i},X`);
    const done = await importAndWait(client, ["email,first_name", ...bad, "ok-bound@x.io,Y"].join("\n"));
    expect(done.status).toBe("done");
    expect(done.counts).toMatchObject({ total: 10_051, failed: 10_050, created: 1 });
    expect(done.errorCount).toBe(10_050);
    expect(done.errors).toHaveLength(100);
    const [n] = await t.ctx.db.$client`select count(*)::int as n, max(row)::int as last from import_errors where import_id = ${done.id}`;
    expect(n).toEqual({ n: 10_000, last: 10_000 });
  });
});

describe("a structurally broken file fails with a reason naming the line", () => {
  it("an unterminated quote within the first 64 KiB → 422 malformed_csv at intake, naming the line", async () => {
    const res = await pasteImport(client, 'email,first_name\nuq1@x.io,Ann\nuq2@x.io,"Bob\nuq3@x.io,Cid\n', { identifier: "email", start: true });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("malformed_csv");
    expect(res.json.error.message).toMatch(/starting on line 3 is never closed/);
  });

  it("an unterminated quote further in → the import fails naming the line, never done with rows missing", async () => {
    const good = Array.from({ length: 5000 }, (_, i) => `uqx${i}@x.io,N${i}`);
    const csv = ["email,first_name", ...good, 'late@x.io,"Unclosed', "after@x.io,Z"].join("\n") + "\n";
    const created = await pasteImport(client, csv, { identifier: "email", start: true });
    expect(created.status).toBe(201);
    const done = await waitDone(created.json.id);
    expect(done.status).toBe("failed");
    expect(done.failureReason).toMatch(/line 5002/);
    expect(done.failureReason).toMatch(/quote/);
    // Nothing of the unfinished batch was committed, and the counts say exactly what was.
    const [n] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and email like 'uqx%'`;
    expect(n?.n).toBe(done.counts.created);
  });
});

describe("upload limits", () => {
  it("a multipart file over UPLOAD_MAX_BYTES → 413, and the partial file is deleted", async () => {
    const small = await buildApp({ ...t.ctx, env: { ...t.ctx.env, UPLOAD_MAX_BYTES: 1_000 } });
    try {
      const before = await uploadFiles();
      const boundary = "----rosterboundary";
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n`),
        Buffer.from("email\n" + "x@example.com\n".repeat(500)),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const res = await small.inject({
        method: "POST",
        url: "/v1/imports",
        payload: body,
        headers: { authorization: `Bearer ${client.apiKey}`, "content-type": `multipart/form-data; boundary=${boundary}` },
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().error.code).toBe("payload_too_large");
      expect(await uploadFiles()).toEqual(before);
    } finally {
      await small.close();
    }
  });

  it("a raw text/csv body over UPLOAD_MAX_BYTES → 413, and the partial file is deleted", async () => {
    const small = await buildApp({ ...t.ctx, env: { ...t.ctx.env, UPLOAD_MAX_BYTES: 1_000 } });
    try {
      const before = await uploadFiles();
      const res = await small.inject({
        method: "POST",
        url: "/v1/imports",
        payload: "email\n" + "x@example.com\n".repeat(500),
        headers: { authorization: `Bearer ${client.apiKey}`, "content-type": "text/csv" },
      });
      expect(res.statusCode).toBe(413);
      expect(res.json().error).toMatchObject({ code: "payload_too_large", details: { limitBytes: 1_000 } });
      expect(await uploadFiles()).toEqual(before);
    } finally {
      await small.close();
    }
  });

  it("too many multipart parts → 413 payload_too_large, and no file is kept", async () => {
    const before = await uploadFiles();
    const boundary = "----rosterparts";
    const fields = Array.from({ length: 20 }, (_, i) => `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join("");
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\nemail\nparts@x.io\r\n`),
      Buffer.from(fields),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const res = await client.request("POST", "/v1/imports", { payload: body, headers: { "content-type": `multipart/form-data; boundary=${boundary}` } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("payload_too_large");
    expect(await uploadFiles()).toEqual(before);
  });

  it("a second file part → 413 payload_too_large, and no file is kept", async () => {
    const before = await uploadFiles();
    const boundary = "----rosterfiles";
    const part = (name: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.csv"\r\nContent-Type: text/csv\r\n\r\nemail\ntwo@x.io\r\n`;
    const body = Buffer.from(part("file") + part("file") + `--${boundary}--\r\n`);
    const res = await client.request("POST", "/v1/imports", { payload: body, headers: { "content-type": `multipart/form-data; boundary=${boundary}` } });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe("payload_too_large");
    expect(await uploadFiles()).toEqual(before);
  });

  it("a multipart file under the limit is accepted, with its filename", async () => {
    const boundary = "----rosterboundary2";
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="identifier"\r\n\r\nemail\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="list.csv"\r\nContent-Type: text/csv\r\n\r\n`),
      Buffer.from("email,first_name\nmp@x.io,Multi\n"),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await client.request("POST", "/v1/imports", { payload: body, headers: { "content-type": `multipart/form-data; boundary=${boundary}` } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ filename: "list.csv", identifier: "email", status: "draft", headers: ["email", "first_name"] });
  });
});

async function waitDone(id: string) {
  const { waitForImport } = await import("../helpers/api.js");
  return waitForImport(client, id);
}
