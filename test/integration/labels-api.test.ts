import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { waitForComputed, waitForSegment } from "../helpers/segments.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let client: Client;
let other: Client;
let workers: WorkerPool;
/** Label name → id, from GET /v1/labels. */
let ids: Record<string, string> = {};

async function labelsOf(email: string): Promise<string[]> {
  const [row] = await t.ctx.db.$client`select label_ids::text[] as ids from people where workspace_id = ${client.workspaceId} and email = ${email}`;
  return (row?.ids as string[]) ?? [];
}
async function list(c: Client = client) {
  const res = await c.request("GET", "/v1/labels?limit=100");
  expect(res.status).toBe(200);
  return res.json.data as { id: string; name: string; peopleCount: number; createdAt: string }[];
}

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  workers = await startTestWorkers(t.ctx);
  const csv = ["email,labels", 'ann@x.io,"VIP:Trial"', "bo@x.io,VIP", "cy@x.io,Trial:Churned", "di@x.io,"].join("\n");
  const done = await importAndWait(client, csv);
  expect(done.status).toBe("done");
  ids = Object.fromEntries((await list()).map((l) => [l.name, l.id]));
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

describe("labels API", () => {
  it("lists labels by id with their people counts", async () => {
    const labels = await list();
    expect(labels.map((l) => [l.name, l.peopleCount])).toEqual(
      expect.arrayContaining([
        ["VIP", 2],
        ["Trial", 2],
        ["Churned", 1],
      ]),
    );
    expect(labels[0]).toEqual({ id: expect.stringMatching(/^\d+$/), name: expect.any(String), peopleCount: expect.any(Number), createdAt: expect.any(String) });
    expect(await list(other)).toEqual([]);
  });

  it("creates (201), refuses a duplicate (409), keeps names case-sensitive, renames (409 on a taken name)", async () => {
    const made = await client.request("POST", "/v1/labels", { payload: { name: "Lead" } });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ name: "Lead", peopleCount: 0 });
    const dup = await client.request("POST", "/v1/labels", { payload: { name: "Lead" } });
    expect(dup.status).toBe(409);
    expect(dup.json.error.code).toBe("label_name_taken");
    expect((await client.request("POST", "/v1/labels", { payload: { name: "lead" } })).status).toBe(201);
    // Another workspace may use the same name.
    expect((await other.request("POST", "/v1/labels", { payload: { name: "Lead" } })).status).toBe(201);

    const taken = await client.request("PATCH", `/v1/labels/${made.json.id}`, { payload: { name: "VIP" } });
    expect(taken.status).toBe(409);
    expect(taken.json.error.code).toBe("label_name_taken");
    const renamed = await client.request("PATCH", `/v1/labels/${ids.VIP}`, { payload: { name: "Very Important" } });
    expect(renamed.status).toBe(200);
    expect(renamed.json).toMatchObject({ id: ids.VIP, name: "Very Important", peopleCount: 2 });
    expect(await labelsOf("bo@x.io")).toEqual([ids.VIP]);
    expect((await client.request("PATCH", "/v1/labels/999999999", { payload: { name: "X" } })).status).toBe(404);
  });

  it("delete removes every person's link, then the label (204)", async () => {
    const res = await client.request("DELETE", `/v1/labels/${ids.Churned}`);
    expect(res.status).toBe(204);
    expect(await labelsOf("cy@x.io")).toEqual([ids.Trial]);
    expect((await list()).some((l) => l.id === ids.Churned)).toBe(false);
    expect((await client.request("DELETE", `/v1/labels/${ids.Churned}`)).status).toBe(404);
  });

  it("merge leaves people one link to `into`, sorted and distinct, and deletes the source", async () => {
    // A dynamic segment naming the source label: the merge's workspace recompute empties it.
    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Trial people", type: "dynamic", conditions: { label: "Trial", op: "has" } } });
    expect(seg.status).toBe(201);
    expect((await waitForComputed(client, seg.json.id)).memberCount).toBe(2);
    expect((await client.request("POST", `/v1/labels/${ids.Trial}/merge`, { payload: { into: ids.Trial } })).status).toBe(422);
    const foreign = (await list(other))[0]!.id;
    const cross = await client.request("POST", `/v1/labels/${ids.Trial}/merge`, { payload: { into: foreign } });
    expect(cross.status).toBe(404);
    expect(cross.json.error.code).toBe("not_found");

    const res = await client.request("POST", `/v1/labels/${ids.Trial}/merge`, { payload: { into: ids.VIP } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: ids.VIP, peopleCount: 3 });
    expect(await labelsOf("ann@x.io")).toEqual([ids.VIP]); // held both: one link
    expect(await labelsOf("cy@x.io")).toEqual([ids.VIP]);
    expect((await list()).some((l) => l.id === ids.Trial)).toBe(false);
    expect((await waitForSegment(client, seg.json.id, (g) => g.status === "ready" && g.memberCount === 0)).memberCount).toBe(0);
  });

  it("an import's unknown label id names the nearest existing ids", async () => {
    const labels = await list();
    const max = Math.max(...labels.map((l) => Number(l.id)));
    const missing = max + 1000;
    const done = await importAndWait(client, ["email,label_ids", `ed@x.io,${missing}`].join("\n"));
    expect(done.errors).toHaveLength(1);
    const nearest = [...labels].sort((x, y) => Number(y.id) - Number(x.id)).slice(0, 3).sort((x, y) => Number(x.id) - Number(y.id));
    expect(done.errors[0]).toMatchObject({
      code: "unknown_label_id",
      message: `Label id ${missing} does not exist; nearest existing ids: ${nearest.map((l) => `${l.id} (${l.name})`).join(", ")}`,
    });
    const none = await importAndWait(other, ["email,label_ids", "ed@x.io,1"].join("\n"));
    expect(none.errors[0].message).toMatch(/^Label id 1 does not exist; (the workspace has no labels|nearest existing ids: \d+ \(Lead\))/);
  });
});
