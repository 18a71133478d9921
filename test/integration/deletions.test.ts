import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { parsePrometheus, valueOf } from "../helpers/prometheus.js";
import { waitForComputed } from "../helpers/segments.js";

const t = useTestContext();
let client: Client;
let other: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  other = await createClient(t.ctx, client.app, "Other");
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

const identify = (c: Client, body: object) => c.request("POST", "/v1/users/identify", { payload: body });

async function waitForDeletion(c: Client, id: string, timeoutMs = 30_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await c.request("GET", `/v1/deletions/${id}`);
    if (res.status !== 200) throw new Error(`GET deletion: ${res.status} ${res.body}`);
    if (res.json.status === "done" || res.json.status === "failed") return res.json;
    if (Date.now() > until) throw new Error(`deletion ${id} still ${res.json.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function traces(personId: string) {
  const [row] = await t.ctx.db.$client`
    select
      (select count(*)::int from people where id = ${personId}) as people,
      (select coalesce(sum(cardinality(label_ids)), 0)::int from people where id = ${personId}) as labels,
      (select count(*)::int from segment_memberships where person_id = ${personId}) as memberships,
      (select count(*)::int from events where person_id = ${personId}) as events`;
  return row;
}

describe("DELETE /v1/users/:id", () => {
  it("erases the person with labels, memberships (counts follow, no segment.left event) and events; 204", async () => {
    const dynamic = await client.request("POST", "/v1/segments", { payload: { name: "Erase pro", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } } });
    expect(dynamic.status).toBe(201);
    await waitForComputed(client, dynamic.json.id);
    const staticSeg = (await client.request("POST", "/v1/segments", { payload: { name: "Erase hand-picked", type: "static" } })).json;

    const ada = (await identify(client, { email: "ada@erase.test", externalId: "ada-1", attributes: { plan: "pro" }, labels: ["VIP", "Trial"] })).json;
    const bob = (await identify(client, { email: "bob@erase.test", attributes: { plan: "pro" }, labels: ["VIP"] })).json;
    expect((await client.request("POST", "/v1/events", { payload: { events: [{ user: { email: "ada@erase.test" }, event: "Clicked", properties: { x: 1 } }] } })).json.accepted).toBe(1);
    await client.request("POST", `/v1/segments/${staticSeg.id}/members`, { payload: { users: [{ id: ada.id }, { id: bob.id }] } });
    expect((await client.request("GET", `/v1/segments/${dynamic.json.id}`)).json.memberCount).toBe(2);
    const before = await traces(ada.id);
    expect(before).toMatchObject({ people: 1, labels: 2, memberships: 2 });
    expect(before!.events).toBeGreaterThan(1);

    const res = await client.request("DELETE", `/v1/users/${ada.id}`);
    expect(res.status).toBe(204);
    expect(res.body).toBe("");
    expect(await traces(ada.id)).toEqual({ people: 0, labels: 0, memberships: 0, events: 0 });
    expect((await client.request("GET", `/v1/users/${ada.id}`)).status).toBe(404);
    expect((await client.request("GET", `/v1/segments/${dynamic.json.id}`)).json.memberCount).toBe(1);
    expect((await client.request("GET", `/v1/segments/${staticSeg.id}`)).json.memberCount).toBe(1);
    // Bob is untouched.
    expect(await traces(bob.id)).toMatchObject({ people: 1, labels: 1, memberships: 2 });
    // A recompute agrees with the bookkeeping.
    const since = (await client.request("GET", `/v1/segments/${dynamic.json.id}`)).json.lastComputedAt;
    await client.request("POST", `/v1/segments/${dynamic.json.id}/recompute`);
    expect((await waitForComputed(client, dynamic.json.id, since)).memberCount).toBe(1);
    expect((await client.request("DELETE", `/v1/users/${ada.id}`)).status).toBe(404);
  });

  it("answers 404 for another workspace's person and for unknown or malformed ids, erasing nothing", async () => {
    const cy = (await identify(client, { email: "cy@erase.test" })).json;
    for (const id of [cy.id, "999999999", "abc", "0"]) {
      const res = await other.request("DELETE", `/v1/users/${id}`);
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe("not_found");
    }
    expect((await traces(cy.id))!.people).toBe(1);
  });

  it("a later import of the same email creates a new person", async () => {
    const first = await importAndWait(client, "email,first_name\ndee@erase.test,Dee\n");
    expect(first.counts.created).toBe(1);
    const [row] = await t.ctx.db.$client`select id::text from people where workspace_id = ${client.workspaceId} and email = 'dee@erase.test'`;
    expect((await client.request("DELETE", `/v1/users/${row!.id}`)).status).toBe(204);
    const again = await importAndWait(client, "email,first_name\ndee@erase.test,Dee\n");
    expect(again.counts).toMatchObject({ created: 1, updated: 0 });
    const [now] = await t.ctx.db.$client`select id::text from people where workspace_id = ${client.workspaceId} and email = 'dee@erase.test'`;
    expect(now!.id).not.toBe(row!.id);
  });
});

describe("POST /v1/deletions", () => {
  it("needs exactly one selector (422) and checks the segment and conditions it is given", async () => {
    for (const body of [{}, { users: [{ email: "x@y.z" }], segmentId: "00000000-0000-0000-0000-000000000000" }, { dryRun: true }]) {
      const res = await client.request("POST", "/v1/deletions", { payload: body });
      expect(res.status).toBe(422);
    }
    expect((await client.request("POST", "/v1/deletions", { payload: { segmentId: "00000000-0000-0000-0000-000000000000" } })).status).toBe(404);
    const bad = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "nope", op: "eq", value: 1 } } });
    expect(bad.status).toBe(422);
    expect(bad.json.error.code).toBe("invalid_conditions");
    expect((await client.request("GET", "/v1/deletions")).json.data).toEqual([]);
  });

  it("erases people named by id, email, externalId and username; matched counts those found; 202 with Location", async () => {
    const a = (await identify(client, { email: "u1@del.test" })).json;
    const b = (await identify(client, { externalId: "u2-ext" })).json;
    const c = (await identify(client, { username: "u3name" })).json;
    const d = (await identify(client, { email: "u4@del.test" })).json;
    const foreign = (await identify(other, { email: "u1@del.test" })).json;
    const res = await client.request("POST", "/v1/deletions", {
      payload: { users: [{ email: "U1@del.test" }, { externalId: "u2-ext" }, { username: "u3name" }, { id: d.id }, { id: foreign.id }, { email: "nobody@del.test" }] },
    });
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`/v1/deletions/${res.json.id}`);
    expect(res.json).toMatchObject({ status: "queued", selector: "users", dryRun: false, matched: 4, deleted: 0, finishedAt: null, failureReason: null });
    const done = await waitForDeletion(client, res.json.id);
    expect(done).toMatchObject({ status: "done", matched: 4, deleted: 4 });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    for (const p of [a, b, c, d]) expect((await traces(p.id))!.people).toBe(0);
    expect((await traces(foreign.id))!.people).toBe(1);
    // Nothing of the request's identifiers is kept, and the snapshot is worked off.
    const [row] = await t.ctx.db.$client`select selector, (select count(*)::int from deletion_targets where deletion_id = ${res.json.id}) as targets from deletions where id = ${res.json.id}`;
    expect(row).toEqual({ selector: null, targets: 0 });
    expect((await other.request("GET", `/v1/deletions/${res.json.id}`)).status).toBe(404);
  });

  it("roster_people_erased_total rises by the number erased; a dry run adds nothing", async () => {
    const erased = async () => {
      const res = await client.app.inject({ method: "GET", url: "/metrics" });
      expect(res.statusCode).toBe(200);
      return valueOf(parsePrometheus(res.body), "roster_people_erased_total");
    };
    for (let i = 0; i < 3; i++) await identify(client, { email: `metric${i}@del.test`, attributes: { cohort: "metric" } });
    const before = await erased();
    const dry = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "attributes.cohort", op: "eq", value: "metric" }, dryRun: true } });
    expect(await waitForDeletion(client, dry.json.id)).toMatchObject({ status: "done", matched: 3, deleted: 0 });
    expect(await erased()).toBe(before);
    const res = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "attributes.cohort", op: "eq", value: "metric" } } });
    expect(await waitForDeletion(client, res.json.id)).toMatchObject({ status: "done", deleted: 3 });
    expect(await erased()).toBe(before + 3);
  });

  it("an Idempotency-Key replay answers with the same deletion (202, Location) and queues no other", async () => {
    await identify(client, { email: "idem@del.test" });
    const send = () => client.request("POST", "/v1/deletions", { payload: { users: [{ email: "idem@del.test" }] }, headers: { "idempotency-key": "del-once" } });
    const first = await send();
    expect(first.status).toBe(202);
    await waitForDeletion(client, first.json.id);
    const replay = await send();
    expect(replay.status).toBe(202);
    expect(replay.headers.location).toBe(`/v1/deletions/${first.json.id}`);
    expect(replay.json.id).toBe(first.json.id);
    const [n] = await t.ctx.db.$client`select count(*)::int as n from deletions where workspace_id = ${client.workspaceId}::uuid and created_at >= ${first.json.createdAt}::timestamptz`;
    expect(n!.n).toBe(1);
    // The same key with another request is refused.
    const other = await client.request("POST", "/v1/deletions", { payload: { users: [{ email: "someone@del.test" }] }, headers: { "idempotency-key": "del-once" } });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe("idempotency_key_reused");
  });

  it("answers 404 for another workspace's segment, erasing no one", async () => {
    const theirs = await other.request("POST", "/v1/segments", { payload: { name: "Theirs", type: "static" } });
    expect(theirs.status).toBe(201);
    const count = async () => (await t.ctx.db.$client`select count(*)::int as n from deletions where workspace_id = ${client.workspaceId}::uuid`)[0]!.n as number;
    const before = await count();
    const res = await client.request("POST", "/v1/deletions", { payload: { segmentId: theirs.json.id } });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe("not_found");
    expect(await count()).toBe(before);
  });

  it("a dry run counts who would go and erases nobody; a segment and conditions select who goes", async () => {
    for (let i = 0; i < 5; i++) await identify(client, { email: `bulk${i}@del.test`, attributes: { cohort: "bulk", n: i } });
    const dry = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "attributes.cohort", op: "eq", value: "bulk" }, dryRun: true } });
    expect(dry.status).toBe(202);
    expect(dry.json).toMatchObject({ selector: "conditions", dryRun: true, matched: null });
    expect(await waitForDeletion(client, dry.json.id)).toMatchObject({ status: "done", dryRun: true, matched: 5, deleted: 0 });
    const [left] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and attributes->>'cohort' = 'bulk'`;
    expect(left!.n).toBe(5);

    const seg = await client.request("POST", "/v1/segments", { payload: { name: "Bulk low", type: "dynamic", conditions: { field: "attributes.n", op: "lt", value: 2 } } });
    await waitForComputed(client, seg.json.id);
    const bySegment = await client.request("POST", "/v1/deletions", { payload: { segmentId: seg.json.id } });
    expect(await waitForDeletion(client, bySegment.json.id)).toMatchObject({ status: "done", selector: "segment", matched: 2, deleted: 2 });
    expect((await client.request("GET", `/v1/segments/${seg.json.id}`)).json.memberCount).toBe(0);

    const byConditions = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "attributes.cohort", op: "eq", value: "bulk" } } });
    expect(await waitForDeletion(client, byConditions.json.id)).toMatchObject({ status: "done", matched: 3, deleted: 3 });
    const [none] = await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and attributes->>'cohort' = 'bulk'`;
    expect(none!.n).toBe(0);

    const list = await client.request("GET", "/v1/deletions?limit=2");
    expect(list.json.data.map((d: any) => d.id)).toEqual([byConditions.json.id, bySegment.json.id]);
    const next = await client.request("GET", `/v1/deletions?limit=2&cursor=${list.json.nextCursor}`);
    expect(next.json.data[0].id).toBe(dry.json.id);
    expect((await client.request("GET", "/v1/deletions?status=failed")).json.data).toEqual([]);
  });
});
