import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_LIST_VALUES, MAX_NODES } from "../../src/domain/segments/conditions.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { csvRows, download, runExportVia } from "../helpers/exports.js";
import { insertPerson, waitForSegment } from "../helpers/segments.js";

// Conditions at every documented edge at once: 200 nodes, 199 of them in/not_in lists of 1,000 values
// (199,000 values, far beyond PostgreSQL's 65,535 bind parameters if each value were one).

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

/** p0…p9: code "c<i>", n = i, tier "gold" for even i; emails mixed case to exercise the email comparison. */
beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
  for (let i = 0; i < 10; i++) {
    await insertPerson(t.ctx, client.workspaceId, { email: `P${i}@Edge.test`, attributes: { code: `c${i}`, n: i, tier: i % 2 === 0 ? "gold" : "tin" } });
  }
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

/** A list of exactly MAX_LIST_VALUES values: the given ones, padded with values no one holds. */
function fill<T>(given: T[], pad: (i: number) => T): T[] {
  return [...given, ...Array.from({ length: MAX_LIST_VALUES - given.length }, (_, i) => pad(i))];
}

/** Matches p0, p2 and p4: codes c0…c5, n in 0…4, email of p0…p7, tier not tin. */
function edgeConditions() {
  const lists = [
    ...Array.from({ length: 80 }, () => ({ field: "attributes.code", op: "in", value: fill(["c0", "c1", "c2", "c3", "c4", "c5"], (i) => `none-${i}`) })),
    ...Array.from({ length: 60 }, () => ({ field: "attributes.n", op: "in", value: fill([0, 1, 2, 3, 4], (i) => 1000 + i) })),
    ...Array.from({ length: 40 }, () => ({ field: "email", op: "in", value: fill(["p0@edge.test", "P1@EDGE.TEST", "p2@Edge.test", "p3@edge.test", "p4@edge.test", "p5@edge.test", "p6@edge.test", "p7@edge.test"], (i) => `x${i}@nowhere.test`) })),
    ...Array.from({ length: 19 }, () => ({ field: "attributes.tier", op: "not_in", value: fill(["tin"], (i) => `metal-${i}`) })),
  ];
  expect(lists.length + 1).toBe(MAX_NODES);
  return { all: lists };
}

const expectedEmails = ["P0@Edge.test", "P2@Edge.test", "P4@Edge.test"];

describe("conditions at the documented limits (200 nodes, 1,000 values a list)", () => {
  it("previews with the exact count and sample", async () => {
    const res = await client.request("POST", "/v1/segments/preview", { payload: { conditions: edgeConditions() } });
    expect(res.status, res.body.slice(0, 300)).toBe(200);
    expect(res.json.count).toBe(3);
    expect(res.json.sample.map((u: any) => u.email)).toEqual(expectedEmails);
  });

  it("searches users", async () => {
    const res = await client.request("POST", "/v1/users/search", { payload: { conditions: edgeConditions(), limit: 10 } });
    expect(res.status, res.body.slice(0, 300)).toBe(200);
    expect(res.json.data.map((u: any) => u.email)).toEqual(expectedEmails);
  });

  it("computes a dynamic segment, and recomputes it, to status ready with the right members", async () => {
    const created = await client.request("POST", "/v1/segments", { payload: { name: "Edge", type: "dynamic", conditions: edgeConditions() } });
    expect(created.status, created.body.slice(0, 300)).toBe(201);
    const settled = (s: any) => s.lastComputedAt !== null && (s.status === "ready" || s.status === "failed");
    const first = await waitForSegment(client, created.json.id, settled);
    expect(first).toMatchObject({ status: "ready", memberCount: 3 });
    const again = await client.request("POST", `/v1/segments/${created.json.id}/recompute`);
    expect(again.status).toBe(202);
    const second = await waitForSegment(client, created.json.id, (s) => settled(s) && s.lastComputedAt > first.lastComputedAt);
    expect(second).toMatchObject({ status: "ready", memberCount: 3 });
    const members = await client.request("GET", `/v1/segments/${created.json.id}/members`);
    expect(members.json.data.map((u: any) => u.email)).toEqual(expectedEmails);
  });

  it("exports the matching users", async () => {
    const done = await runExportVia(client, { kind: "users", columns: ["email"], conditions: edgeConditions() }, 30_000);
    expect(done).toMatchObject({ status: "done", rowCount: 3 });
    const file = await download(client, done.id);
    expect(csvRows(file.text)).toEqual([["email"], ...expectedEmails.map((e) => [e])]);
  });
});
