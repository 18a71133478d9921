import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { insertPerson, memberIds, waitForComputed } from "../helpers/segments.js";

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

const DAY = 86_400_000;
/** An ISO time `days` days (and `hours` hours) before now, in UTC. */
const ago = (days: number, hours = 0) => new Date(Date.now() - days * DAY - hours * 3_600_000).toISOString();

async function createSegment(body: object) {
  const res = await client.request("POST", "/v1/segments", { payload: body });
  if (res.status !== 201) throw new Error(`create segment: ${res.status} ${res.body}`);
  return res.json;
}

describe("events import feeds segment event conditions", () => {
  it('a segment on "performed X at least 3 times in the last 30 days" matches exactly after an events import', async () => {
    const ada = await insertPerson(t.ctx, client.workspaceId, { email: "ada@x.test" });
    await insertPerson(t.ctx, client.workspaceId, { email: "alan@x.test" });
    await insertPerson(t.ctx, client.workspaceId, { email: "bob@x.test" });
    const cyd = await insertPerson(t.ctx, client.workspaceId, { externalId: "u-cyd", email: "cyd@x.test" });
    const seg = await createSegment({
      name: "Upgraders",
      type: "dynamic",
      conditions: { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } },
    });
    const first = await waitForComputed(client, seg.id);
    expect(first.memberCount).toBe(0);

    const csv = [
      "email,event,occurred_at,plan",
      // ada: exactly 3 in the window, the oldest a day inside it.
      `ada@x.test,Clicked Upgrade,${ago(1)},pro`,
      `ada@x.test,Clicked Upgrade,${ago(10)},pro`,
      `ada@x.test,Clicked Upgrade,${ago(29)},pro`,
      // alan: 3 in all, but one a day outside the window.
      `alan@x.test,Clicked Upgrade,${ago(2)},`,
      `alan@x.test,Clicked Upgrade,${ago(3)},`,
      `alan@x.test,Clicked Upgrade,${ago(31)},`,
      // bob: 4 events in the window, only 2 of them this event (names are exact).
      `bob@x.test,Clicked Upgrade,${ago(1)},`,
      `bob@x.test,Clicked Upgrade,${ago(2)},`,
      `bob@x.test,Viewed Pricing,${ago(3)},`,
      `bob@x.test,clicked upgrade,${ago(4)},`,
      // cyd: 4 in the window, written as offset-less UTC times ("YYYY-MM-DD HH:MM").
      ...[1, 5, 9, 20].map((d) => `cyd@x.test,Clicked Upgrade,${ago(d).slice(0, 16).replace("T", " ")},`),
      // Nobody: a row error, not a member.
      `ghost@x.test,Clicked Upgrade,${ago(1)},`,
    ].join("\n");
    const created = await pasteImport(client, csv, { kind: "events", identifier: "email", start: true });
    expect(created.status).toBe(201);
    const done = await waitForImport(client, created.json.id);
    expect(done.counts).toEqual({ total: 15, processed: 15, created: 14, updated: 0, unchanged: 0, skipped: 0, failed: 1 });

    // The import queued the workspace recompute; nothing else asks for one here.
    const after = await waitForComputed(client, seg.id, first.lastComputedAt);
    expect(after.memberCount).toBe(2);
    expect(await memberIds(client, seg.id)).toEqual([ada, cyd].sort());
  });

  it("a members import changes no people and queues no recompute", async () => {
    const seg = await createSegment({ name: "Anyone with an email", type: "dynamic", conditions: { field: "email", op: "exists" } });
    const first = await waitForComputed(client, seg.id);
    const created = await pasteImport(client, "email,password\nstaff@x.test,Staff-pass-1\n", { kind: "members", identifier: "email", start: true });
    const done = await waitForImport(client, created.json.id);
    expect(done.counts.created).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    expect((await client.request("GET", `/v1/segments/${seg.id}`)).json.lastComputedAt).toBe(first.lastComputedAt);
  });
});
