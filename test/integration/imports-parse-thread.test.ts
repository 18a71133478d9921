import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

// The parse thread's heap is bounded (IMPORT_PARSE_THREAD_HEAP_MB). A thread that runs out of it is not an error of
// the import: the run parses the rest on its own thread from the last batch the thread handed over. Here the heap is
// made small and the file holds rows with 4 MB cells (each a too_long row error whose cells the batch keeps for the
// error report), so the thread runs out of memory somewhere in the file.
const t = useTestContext({ IMPORT_PARSE_THREAD_MIN_BYTES: "0", IMPORT_PARSE_THREAD_HEAP_MB: "24", IMPORT_BATCH_SIZE: "4" });
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

describe("a parse thread that runs out of memory", () => {
  it("hands over to the run's thread: every row is counted once, the good ones imported, the big ones reported", async () => {
    const big = "b".repeat(4 * 1024 * 1024);
    const lines = ["email,first_name"];
    const bigRows: number[] = [];
    for (let i = 1; i <= 60; i++) {
      if (i > 8 && i % 3 === 0) {
        lines.push(`big${i}@x.io,${big}`);
        bigRows.push(i);
      } else lines.push(`p${i}@x.io,P${i}`);
    }
    const res = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: Buffer.from(lines.join("\n") + "\n"), headers: { "content-type": "text/csv" } });
    expect(res.status).toBe(201);
    const done = await waitForImport(client, res.json.id, 120_000);
    expect(done).toMatchObject({ status: "done", counts: { total: 60, processed: 60, created: 60 - bigRows.length, failed: bigRows.length, skipped: 0 } });
    const logs = t.ctx.logs.join("");
    expect(logs).toContain("import parses its rows on a parse thread");
    expect(logs).toContain("the parse thread ran out of memory; parsing the rest on the run's thread");
    const errors = await errorReport(client, done.id);
    expect(errors.map((e) => [Number(e.row), e.column, e.code])).toEqual(bigRows.map((r) => [r, "first_name", "too_long"]));
    const [{ n }] = (await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId}`) as unknown as [{ n: number }];
    expect(n).toBe(60 - bigRows.length);
  }, 180_000);
});
