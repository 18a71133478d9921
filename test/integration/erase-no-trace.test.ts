import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { dumpRedis } from "../helpers/redis-dump.js";
import { waitForComputed } from "../helpers/segments.js";

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

/** Data only, as text: every row of every table of the test's database. */
async function pgDump(): Promise<string> {
  const { stdout } = await promisify(execFile)("pg_dump", ["--data-only", "--no-owner", "--dbname", t.ctx.env.DATABASE_URL], { maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** Every file under the storage directory, path and bytes. */
async function storageTree(dir = t.ctx.storageDir): Promise<string> {
  const parts: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    parts.push(file, await readFile(file, "latin1"));
  }
  return parts.join("\n");
}

async function everything(): Promise<{ pg: string; redis: string; storage: string; logs: string }> {
  return { pg: await pgDump(), redis: await dumpRedis(t.ctx.redis, t.ctx.env.QUEUE_PREFIX), storage: await storageTree(), logs: t.ctx.logs.join("") };
}

const EMAIL = "Erin.Erased@trace.test";

describe("an erased person leaves no trace", () => {
  it("after an import, identify, events, segments, an export and a deletion job, no dump holds the email", async () => {
    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Traced", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    await waitForComputed(client, seg.json.id);
    // An import that creates the person, with a failed row repeating the email (its cells are kept for the report).
    const done = await importAndWait(client, `email,first_name,plan,signup\n${EMAIL},Erin,pro,2026-01-01\nkeeper@trace.test,Kay,pro,2026-01-01\n${EMAIL},Erin,pro,not-a-date-${EMAIL}\n`, {
      mapping: { signup: "attribute:signup" },
      options: { createSegment: { name: "Import cohort" } },
    });
    expect(done.status).toBe("done");
    const identified = await client.request("POST", "/v1/users/identify", { payload: { email: EMAIL.toLowerCase(), labels: ["VIP"] }, headers: { "idempotency-key": "trace-1" } });
    expect(identified.status).toBe(200);
    await client.request("POST", "/v1/events", { payload: { events: [{ user: { email: EMAIL }, event: "Paid", properties: { receipt: EMAIL } }] } });
    const exp = await client.request("POST", "/v1/exports", { payload: { kind: "users" } });
    for (let i = 0; i < 200 && (await client.request("GET", `/v1/exports/${exp.json.id}`)).json.status !== "done"; i++) await new Promise((r) => setTimeout(r, 50));

    const before = await everything();
    const needle = EMAIL.toLowerCase();
    // The dumps do see the person before: otherwise the check below would prove nothing.
    expect(before.pg.toLowerCase()).toContain(needle);
    expect(before.storage.toLowerCase()).toContain(needle);

    const del = await client.request("POST", "/v1/deletions", { payload: { users: [{ email: EMAIL }] } });
    expect(del.status).toBe(202);
    for (let i = 0; i < 200 && (await client.request("GET", `/v1/deletions/${del.json.id}`)).json.status !== "done"; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await client.request("GET", `/v1/deletions/${del.json.id}`)).json).toMatchObject({ status: "done", matched: 1, deleted: 1 });

    const after = await everything();
    for (const [where, text] of Object.entries(after)) {
      expect(text.toLowerCase().includes(needle), `${where} still holds the email`).toBe(false);
      expect(text.includes("Erin.Erased"), `${where} still holds the email's local part`).toBe(false);
    }
    // The other person is still there, and the import keeps its counts.
    expect(after.pg).toContain("keeper@trace.test");
    expect((await client.request("GET", `/v1/imports/${done.id}`)).json.counts.created).toBe(2);
  });
});
