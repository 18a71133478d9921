import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { waitForSegment } from "../helpers/segments.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// A bulk write leaves the planner's statistics behind until autovacuum's next analyze: an import that created or
// updated ANALYZE_AFTER_ROWS people analyses people, a recompute that moved that many members analyses the
// memberships (lowered to 5 here: the default is 50,000).
const t = useTestContext({ ANALYZE_AFTER_ROWS: "5" });
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

async function analysedAt(table: string): Promise<string | null> {
  const [row] = await t.ctx.db.$client`select last_analyze::text as at from pg_stat_user_tables where relname = ${table}`;
  return (row?.at as string | null) ?? null;
}

async function until(check: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

const csv = (n: number, from = 1) => ["email,first_name", ...Array.from({ length: n }, (_, i) => `p${from + i}@x.io,P${from + i}`)].join("\n") + "\n";

describe("statistics after a bulk write", () => {
  it("an import under the threshold analyses nothing; one at it analyses people; a recompute that moved as many members analyses them", async () => {
    expect(await analysedAt("people")).toBeNull();
    expect((await importAndWait(client, csv(4))).counts.created).toBe(4);
    // The job's after-work (the segment refresh request) runs once the import says done: give it time to not analyse.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await analysedAt("people")).toBeNull();

    expect((await importAndWait(client, csv(5, 5))).counts.created).toBe(5);
    expect(await until(async () => (await analysedAt("people")) !== null)).toBe(true);

    expect(await analysedAt("segment_memberships")).toBeNull();
    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Everyone", type: "dynamic", conditions: { field: "email", op: "contains", value: "@x.io" } } });
    expect(seg.status).toBe(201);
    expect((await waitForSegment(client, seg.json.id, (s) => s.status === "ready")).memberCount).toBe(9);
    expect(await until(async () => (await analysedAt("segment_memberships")) !== null)).toBe(true);
  }, 60_000);
});
