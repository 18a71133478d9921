import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, importAndWait, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// Issue 13 item 2: nothing undecodable is ever stored; the whole upload decides the encoding, not its first 64 KiB.
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

async function uploadFiles(): Promise<string[]> {
  const dir = path.join(t.ctx.storageDir, "uploads", client.workspaceId);
  return (await readdir(dir).catch(() => [])).sort();
}

const raw = (bytes: Buffer, query = "identifier=email&start=true") =>
  client.request("POST", `/v1/imports?${query}`, { payload: bytes, headers: { "content-type": "text/csv" } });

function multipart(bytes: Buffer, fields: Record<string, string> = { identifier: "email", start: "true" }) {
  const boundary = "----rosterenc";
  const parts = Object.entries(fields).map(([k, v]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  const body = Buffer.concat([
    ...parts,
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="people.csv"\r\nContent-Type: text/csv\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return client.request("POST", "/v1/imports", { payload: body, headers: { "content-type": `multipart/form-data; boundary=${boundary}` } });
}

async function firstNames(like: string) {
  const rows = await t.ctx.db.$client`select email, first_name from people where workspace_id = ${client.workspaceId} and email like ${like} order by email`;
  return rows.map((r) => [r.email, r.first_name]);
}

/** 4,000 ASCII rows (far past the 64 KiB sniff window), then one Windows-1252 row: `M\xfcnchen`. */
function asciiThenCp1252(prefix: string): Buffer {
  const ascii = Array.from({ length: 4_000 }, (_, i) => `${prefix}${String(i).padStart(4, "0")}@x.io,Anna,Berlin`).join("\n");
  return Buffer.concat([Buffer.from(`email,first_name,city\n${ascii}\n${prefix}late@x.io,`), Buffer.from([0x4d, 0xfc, 0x6e, 0x63, 0x68, 0x65, 0x6e]), Buffer.from(",Bayern\n")]);
}

describe("Windows-1252 bytes after the sniff window are decoded, not replaced by U+FFFD", () => {
  it("raw text/csv: 4,000 ASCII rows then M\\xfcnchen → windows-1252, München stored, nothing failed", async () => {
    const bytes = asciiThenCp1252("rc");
    expect(bytes.indexOf(0xfc)).toBeGreaterThan(64 * 1024);
    const res = await raw(bytes);
    expect(res.status).toBe(201);
    expect(res.json.encoding).toBe("windows-1252");
    const done = await waitForImport(client, res.json.id);
    expect(done).toMatchObject({ status: "done", counts: { created: 4_001, failed: 0 } });
    expect(await firstNames("rclate@%")).toEqual([["rclate@x.io", "München"]]);
    const [fffd] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and strpos(first_name, ${"\uFFFD"}) > 0`;
    expect(fffd?.n).toBe(0);
  });

  it("multipart: the same file → München stored", async () => {
    const res = await multipart(asciiThenCp1252("mp"));
    expect(res.status).toBe(201);
    expect(res.json.encoding).toBe("windows-1252");
    const done = await waitForImport(client, res.json.id);
    expect(done).toMatchObject({ status: "done", counts: { created: 4_001, failed: 0 } });
    expect(await firstNames("mplate@%")).toEqual([["mplate@x.io", "München"]]);
  });
});

describe("valid UTF-8 with a stray byte is neither UTF-8 nor Windows-1252: refused before any import can start", () => {
  // 日本 in UTF-8, then one Latin-1 byte (0xE9, é) on line 3.
  const mixed = Buffer.concat([Buffer.from("email,first_name\nnihon@x.io,日本\nstray@x.io,Ren"), Buffer.from([0xe9]), Buffer.from("e\n")]);

  it("raw text/csv → 422 invalid_encoding naming line, byte offset and byte; nothing stored, no import", async () => {
    const before = await uploadFiles();
    const importsBefore = (await client.request("GET", "/v1/imports")).json.data.length;
    const res = await raw(mixed);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({
      code: "invalid_encoding",
      details: { line: 3, byteOffset: mixed.indexOf(0xe9), bytes: "e9" },
    });
    expect(res.json.error.message).toMatch(/line 3/);
    expect(await uploadFiles()).toEqual(before);
    expect((await client.request("GET", "/v1/imports")).json.data).toHaveLength(importsBefore);
    expect(await firstNames("nihon@%")).toEqual([]);
  });

  it("multipart → the same 422", async () => {
    const res = await multipart(mixed);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: "invalid_encoding", details: { line: 3, byteOffset: mixed.indexOf(0xe9), bytes: "e9" } });
  });

  it("a stray byte far past the sniff window of a UTF-8 file (é in the head) → 422 naming its line", async () => {
    const rows = Array.from({ length: 4_000 }, (_, i) => `far${i}@x.io,Zoé`).join("\n");
    const bytes = Buffer.concat([Buffer.from(`email,first_name\n${rows}\nfarlast@x.io,M`), Buffer.from([0xfc]), Buffer.from("ller\n")]);
    expect(bytes.indexOf(0xfc)).toBeGreaterThan(64 * 1024);
    const res = await raw(bytes);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: "invalid_encoding", details: { line: 4_002, byteOffset: bytes.indexOf(0xfc), bytes: "fc" } });
  });

  it("a UTF-8 sequence cut short at the end of the file → 422", async () => {
    const bytes = Buffer.concat([Buffer.from("email,first_name\ncut@x.io,日"), Buffer.from([0xe6, 0x9c])]);
    const res = await raw(bytes);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: "invalid_encoding", details: { line: 2, byteOffset: bytes.length - 2, bytes: "e69c" } });
  });

  it("a byte Windows-1252 leaves undefined (0x81) in a non-UTF-8 file → 422, never U+FFFD", async () => {
    const bytes = Buffer.concat([Buffer.from("email,first_name\nund@x.io,M"), Buffer.from([0xfc, 0x81]), Buffer.from("\n")]);
    const res = await raw(bytes);
    expect(res.status).toBe(422);
    expect(res.json.error).toMatchObject({ code: "invalid_encoding", details: { line: 2, byteOffset: bytes.indexOf(0x81), bytes: "81" } });
  });
});

describe("no value containing U+FFFD passes as an email", () => {
  it("an email with U+FFFD in it → invalid_email row error; the other row goes in", async () => {
    const done = await importAndWait(client, "email,first_name\nbad\uFFFDmail@x.io,A\ngood-fffd@x.io,B\n");
    expect(done).toMatchObject({ status: "done", counts: { created: 1, failed: 1 } });
    const errors = await errorReport(client, done.id);
    expect(errors.map((e) => [e.row, e.column, e.code])).toEqual([["1", "email", "invalid_email"]]);
  });
});
