 
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { previewSegment } from "../../src/domain/segments/preview.js";
import { recomputeSegment } from "../../src/domain/segments/recompute.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { insertPerson, memberIds, membershipEvents, setAttributes, waitForComputed, waitForSegment } from "../helpers/segments.js";

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

const sorted = (ids: string[]) => [...ids].sort();
const create = (body: unknown, headers: Record<string, string> = {}) => client.request("POST", "/v1/segments", { payload: body as object, headers });

describe("dynamic segments", () => {
  it("computes members on create, lists them, and shows count, status and timing", async () => {
    const ann = await insertPerson(t.ctx, client.workspaceId, { email: "ann@pro.test", attributes: { plan: "pro" } });
    await insertPerson(t.ctx, client.workspaceId, { email: "bob@free.test", attributes: { plan: "free" } });
    const res = await create({ name: "Pro plan", type: "dynamic", conditions: { field: "attributes.plan", op: "eq", value: "pro" } });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v1/segments/${res.json.id}`);
    expect(res.json).toMatchObject({ name: "Pro plan", type: "dynamic", status: "computing", memberCount: 0 });
    const seg = await waitForComputed(client, res.json.id);
    expect(seg).toMatchObject({ memberCount: 1, failureReason: null });
    expect(seg.lastDurationMs).toBeGreaterThanOrEqual(0);
    expect(await memberIds(client, seg.id)).toEqual([ann]);
    const list = await client.request("GET", "/v1/segments");
    expect(list.json.data.find((s: any) => s.id === seg.id)).toMatchObject({ memberCount: 1, status: "ready" });
    expect(list.json.data[0].lastComputedAt).toBeDefined();
  });

  it("refuses invalid conditions with 422 and the JSON path", async () => {
    const res = await create({ name: "Bad", type: "dynamic", conditions: { all: [{ field: "email", op: "like", value: "x" }] } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("invalid_conditions");
    expect(res.json.error.details.problems[0].path).toBe("all.0.op");
    const unknownField = await create({ name: "Bad", type: "dynamic", conditions: { field: "password", op: "eq", value: "x" } });
    expect(unknownField.json.error.details.problems[0].path).toBe("field");
    const missing = await create({ name: "Bad", type: "dynamic" });
    expect(missing.json.error.code).toBe("conditions_required");
  });

  it("refuses a second segment with the same name (409)", async () => {
    const body = { name: "Twice", type: "static" };
    expect((await create(body)).status).toBe(201);
    const again = await create(body);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe("segment_name_taken");
  });

  it("replays a create with the same Idempotency-Key", async () => {
    const body = { name: "Idem", type: "static" };
    const a = await create(body, { "idempotency-key": "seg-idem-1" });
    const b = await create(body, { "idempotency-key": "seg-idem-1" });
    expect(b.status).toBe(201);
    expect(b.json.id).toBe(a.json.id);
  });

  it("writes exact enter/leave events across two recomputes with data changed in between", async () => {
    const cy = await insertPerson(t.ctx, client.workspaceId, { email: "cy@x.test", attributes: { tier: "gold" } });
    const di = await insertPerson(t.ctx, client.workspaceId, { email: "di@x.test", attributes: { tier: "silver" } });
    const ed = await insertPerson(t.ctx, client.workspaceId, { email: "ed@x.test", attributes: { tier: "gold" } });
    const res = await create({ name: "Gold", type: "dynamic", conditions: { field: "attributes.tier", op: "eq", value: "gold" } });
    const first = await waitForComputed(client, res.json.id);
    expect(sorted(await memberIds(client, first.id))).toEqual(sorted([cy, ed]));
    expect(sorted(await membershipEvents(t.ctx, first.id))).toEqual(sorted([`segment.entered:${cy}`, `segment.entered:${ed}`]));

    await setAttributes(t.ctx, cy, { tier: "silver" });
    await setAttributes(t.ctx, di, { tier: "gold" });
    const again = await client.request("POST", `/v1/segments/${first.id}/recompute`);
    expect(again.status).toBe(202);
    expect(again.headers.location).toBe(`/v1/segments/${first.id}`);
    const second = await waitForComputed(client, first.id, first.lastComputedAt);
    expect(second.memberCount).toBe(2);
    expect(sorted(await memberIds(client, first.id))).toEqual(sorted([di, ed]));
    const events = await membershipEvents(t.ctx, first.id);
    expect(events.slice(2).sort()).toEqual(sorted([`segment.left:${cy}`, `segment.entered:${di}`]));

    // Nothing changed: a third recompute writes no event.
    await client.request("POST", `/v1/segments/${first.id}/recompute`);
    await waitForComputed(client, first.id, second.lastComputedAt);
    expect(await membershipEvents(t.ctx, first.id)).toHaveLength(4);
  });

  it("recomputes a segment once at a time: two concurrent runs write each change once", async () => {
    const ids = await Promise.all([1, 2, 3].map((i) => insertPerson(t.ctx, client.workspaceId, { email: `conc${i}@x.test`, attributes: { conc: true } })));
    const res = await create({ name: "Concurrent", type: "dynamic", conditions: { field: "attributes.conc", op: "eq", value: true } });
    await waitForComputed(client, res.json.id);
    for (const id of ids) await setAttributes(t.ctx, id, { conc: false });
    const [a, b] = await Promise.all([
      recomputeSegment(t.ctx.db, client.workspaceId, res.json.id, t.ctx.logger),
      recomputeSegment(t.ctx.db, client.workspaceId, res.json.id, t.ctx.logger),
    ]);
    expect(a!.left + b!.left).toBe(3);
    const events = await membershipEvents(t.ctx, res.json.id);
    expect(events.filter((e) => e.startsWith("segment.left"))).toHaveLength(3);
  });

  it("runs once more when a recompute is requested while one is running", async () => {
    const person = await insertPerson(t.ctx, client.workspaceId, { email: "rerun@x.test", attributes: { rerun: "no" } });
    const seg = (await create({ name: "Rerun", type: "dynamic", conditions: { field: "attributes.rerun", op: "eq", value: "yes" } })).json;
    await waitForComputed(client, seg.id);
    // Hold the segment's membership lock so the run below starts, then waits.
    const blocker = await t.ctx.db.$client.reserve();
    try {
      await blocker`begin`;
      await blocker`select pg_advisory_xact_lock(hashtextextended(${`roster.segment-members:${seg.id}`}::text, 0))`;
      const run = recomputeSegment(t.ctx.db, client.workspaceId, seg.id, t.ctx.logger);
      await waitForSegment(client, seg.id, (s) => s.status === "computing");
      await setAttributes(t.ctx, person, { rerun: "yes" });
      await t.ctx.db.$client`update segments set recompute_requested_at = clock_timestamp() where id = ${seg.id}`;
      await blocker`commit`;
      const out = await run;
      expect(out!.runs).toBe(2);
      expect(await memberIds(client, seg.id)).toEqual([person]);
    } finally {
      blocker.release();
    }
  });

  it("runs again for a request stamped after a run's last write (one the job id absorbed), up to 5 runs", async () => {
    const person = await insertPerson(t.ctx, client.workspaceId, { email: "late@x.test", attributes: { late: "no" } });
    const seg = (await create({ name: "Late request", type: "dynamic", conditions: { field: "attributes.late", op: "eq", value: "yes" } })).json;
    await waitForComputed(client, seg.id);
    const stamp = () => t.ctx.db.$client`update segments set recompute_requested_at = clock_timestamp() where id = ${seg.id}`;
    // The change and its request land after the first run wrote the segment, while the job would still hold its id.
    let calls = 0;
    const once = await recomputeSegment(t.ctx.db, client.workspaceId, seg.id, t.ctx.logger, async () => {
      if (calls++ === 0) {
        await setAttributes(t.ctx, person, { late: "yes" });
        await stamp();
      }
    });
    expect(once!.runs).toBe(2);
    expect(once!.entered).toBe(1);
    expect(await memberIds(client, seg.id)).toEqual([person]);
    // Requests that never stop: the job gives up after its bound instead of running forever.
    const endless = await recomputeSegment(t.ctx.db, client.workspaceId, seg.id, t.ctx.logger, async () => {
      await stamp();
    });
    expect(endless!.runs).toBe(5);
  });

  it("records a failed recompute with its reason on the segment", async () => {
    const res = await create({ name: "Will fail", type: "dynamic", conditions: { label: "x", op: "has" } });
    await waitForComputed(client, res.json.id);
    // A stored tree the language no longer accepts: the recompute fails and says why.
    await t.ctx.db.$client`update segments set conditions = '{"field": "nope", "op": "eq", "value": 1}' where id = ${res.json.id}`;
    await expect(recomputeSegment(t.ctx.db, client.workspaceId, res.json.id, t.ctx.logger)).rejects.toThrow(/invalid/);
    const seg = (await client.request("GET", `/v1/segments/${res.json.id}`)).json;
    expect(seg.status).toBe("failed");
    expect(seg.failureReason).toMatch(/^The recompute failed: The conditions are invalid/);
    // Through the job as well: the worker reports the same failure on the segment.
    await t.ctx.db.$client`update segments set status = 'ready', failure_reason = null where id = ${res.json.id}`;
    expect((await client.request("POST", `/v1/segments/${res.json.id}/recompute`)).status).toBe(202);
    const failed = await waitForSegment(client, res.json.id, (s) => s.status === "failed");
    expect(failed.failureReason).toMatch(/field: is not a known field/);
  });
});

describe("static segments", () => {
  it("adds and removes members by email, externalId and id, reports unknown people, writes events", async () => {
    const a = await insertPerson(t.ctx, client.workspaceId, { email: "Static.A@x.test" });
    const b = await insertPerson(t.ctx, client.workspaceId, { externalId: "static-b" });
    const c = await insertPerson(t.ctx, client.workspaceId, { email: "static.c@x.test" });
    const foreign = await insertPerson(t.ctx, other.workspaceId, { email: "foreign@x.test" });
    const seg = (await create({ name: "Hand-picked", type: "static" })).json;
    expect(seg.status).toBe("ready");
    const add = await client.request("POST", `/v1/segments/${seg.id}/members`, {
      payload: { users: [{ email: "static.a@X.test" }, { externalId: "static-b" }, { id: c }, { id: foreign }, { email: "nobody@x.test" }] },
    });
    expect(add.status).toBe(200);
    expect(add.json.added).toBe(3);
    expect(add.json.notFound).toEqual([{ id: foreign }, { email: "nobody@x.test" }]);
    expect(add.json.segment.memberCount).toBe(3);
    // Adding again changes nothing.
    const again = await client.request("POST", `/v1/segments/${seg.id}/members`, { payload: { users: [{ id: a }] } });
    expect(again.json.added).toBe(0);

    const page1 = await client.request("GET", `/v1/segments/${seg.id}/members?limit=2`);
    expect(page1.json.data.map((u: any) => u.id)).toEqual([a, b]);
    expect(page1.json.data[0]).toMatchObject({ email: "Static.A@x.test", value: null });
    expect(page1.json.data[0].enteredAt).toMatch(/Z$/);
    const page2 = await client.request("GET", `/v1/segments/${seg.id}/members?limit=2&cursor=${page1.json.nextCursor}`);
    expect(page2.json).toEqual({ data: [expect.objectContaining({ id: c })], nextCursor: null });
    expect((await client.request("GET", `/v1/segments/${seg.id}/members?cursor=garbage`)).json.error.code).toBe("invalid_cursor");

    const removed = await client.request("DELETE", `/v1/segments/${seg.id}/members`, { payload: { users: [{ id: b }] } });
    expect(removed.json).toMatchObject({ removed: 1, notFound: [], segment: { memberCount: 2 } });
    expect(await membershipEvents(t.ctx, seg.id)).toEqual([`segment.entered:${a}`, `segment.entered:${b}`, `segment.entered:${c}`, `segment.left:${b}`]);
  });

  it("refuses explicit members on a dynamic segment and conditions on a static one", async () => {
    const dyn = (await create({ name: "Dyn no members", type: "dynamic", conditions: { all: [] } })).json;
    const res = await client.request("POST", `/v1/segments/${dyn.id}/members`, { payload: { users: [{ email: "a@b.c" }] } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("segment_not_static");
    const st = await create({ name: "Static with conditions", type: "static", conditions: { all: [] } });
    expect(st.json.error.code).toBe("conditions_not_allowed");
  });

  it("recomputes only dynamic segments: a static one is refused and left as it was, an unknown id is not found", async () => {
    const st = (await create({ name: "Static no recompute", type: "static" })).json;
    const res = await client.request("POST", `/v1/segments/${st.id}/recompute`);
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("segment_not_dynamic");
    const [row] = await t.ctx.db.$client`select recompute_requested_at from segments where id = ${st.id}`;
    expect(row!.recompute_requested_at).toBeNull();
    expect((await client.request("POST", "/v1/segments/not-a-uuid/recompute")).status).toBe(404);
    expect((await client.request("POST", "/v1/segments/00000000-0000-4000-8000-000000000000/recompute")).status).toBe(404);
    const dyn = (await create({ name: "Dyn recompute view", type: "dynamic", conditions: { all: [] } })).json;
    await waitForComputed(client, dyn.id);
    const ok = await client.request("POST", `/v1/segments/${dyn.id}/recompute`);
    expect(ok.status).toBe(202);
    expect(ok.headers.location).toBe(`/v1/segments/${dyn.id}`);
    expect(ok.json).toMatchObject({ id: dyn.id, name: "Dyn recompute view", type: "dynamic" });
  });
});

describe("segment composition", () => {
  it("a segment using another follows it, and is recomputed after it changes", async () => {
    const p1 = await insertPerson(t.ctx, client.workspaceId, { email: "comp1@x.test", attributes: { comp: 1 } });
    const p2 = await insertPerson(t.ctx, client.workspaceId, { email: "comp2@x.test", attributes: { comp: 1 } });
    const base = (await create({ name: "Comp base", type: "static" })).json;
    const derived = (await create({ name: "Comp derived", type: "dynamic", conditions: { all: [{ segment: base.id, op: "in" }, { field: "attributes.comp", op: "eq", value: 1 }] } })).json;
    const first = await waitForComputed(client, derived.id);
    expect(first.memberCount).toBe(0);
    await client.request("POST", `/v1/segments/${base.id}/members`, { payload: { users: [{ id: p1 }, { id: p2 }] } });
    const second = await waitForComputed(client, derived.id, first.lastComputedAt);
    expect(sorted(await memberIds(client, derived.id))).toEqual(sorted([p1, p2]));
    expect(second.memberCount).toBe(2);
  });

  it("refuses cycles on update, naming them, and self-reference", async () => {
    const a = (await create({ name: "Cycle A", type: "dynamic", conditions: { all: [] } })).json;
    const b = (await create({ name: "Cycle B", type: "dynamic", conditions: { segment: a.id, op: "in" } })).json;
    const c = (await create({ name: "Cycle C", type: "dynamic", conditions: { not: { segment: b.id, op: "in" } } })).json;
    const res = await client.request("PATCH", `/v1/segments/${a.id}`, { payload: { conditions: { any: [{ segment: c.id, op: "not_in" }] } } });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe("segment_cycle");
    expect(res.json.error.message).toContain("Cycle A → Cycle C → Cycle B → Cycle A");
    expect(res.json.error.details.cycle.map((x: any) => x.id)).toEqual([a.id, c.id, b.id, a.id]);
    const self = await client.request("PATCH", `/v1/segments/${a.id}`, { payload: { conditions: { segment: a.id, op: "in" } } });
    expect(self.json.error.code).toBe("segment_cycle");
    // The refused update changed nothing.
    expect((await client.request("GET", `/v1/segments/${a.id}`)).json.conditions).toEqual({ all: [] });
  });

  it("refuses to delete a segment another one uses (409), then deletes in order", async () => {
    const a = (await create({ name: "Del A", type: "static" })).json;
    const b = (await create({ name: "Del B", type: "dynamic", conditions: { segment: a.id, op: "in" } })).json;
    const refused = await client.request("DELETE", `/v1/segments/${a.id}`);
    expect(refused.status).toBe(409);
    expect(refused.json.error.code).toBe("segment_in_use");
    expect(refused.json.error.details.usedBy).toEqual([{ id: b.id, name: "Del B" }]);
    expect((await client.request("DELETE", `/v1/segments/${b.id}`)).status).toBe(204);
    expect((await client.request("DELETE", `/v1/segments/${a.id}`)).status).toBe(204);
    expect((await client.request("GET", `/v1/segments/${a.id}`)).status).toBe(404);
  });

  it("renames and re-describes without recomputing", async () => {
    const a = (await create({ name: "Rename me", type: "static" })).json;
    const res = await client.request("PATCH", `/v1/segments/${a.id}`, { payload: { name: "Renamed", description: "now described" } });
    expect(res.json).toMatchObject({ name: "Renamed", description: "now described", status: "ready" });
  });
});

describe("preview", () => {
  it("counts matches and returns a sample of at most 20 people", async () => {
    for (let i = 0; i < 25; i++) await insertPerson(t.ctx, client.workspaceId, { email: `preview${i}@x.test`, attributes: { preview: "yes" } });
    const res = await client.request("POST", "/v1/segments/preview", { payload: { conditions: { field: "attributes.preview", op: "eq", value: "yes" } } });
    expect(res.status).toBe(200);
    expect(res.json.count).toBe(25);
    expect(res.json.sample).toHaveLength(20);
    expect(res.json.sample[0]).toMatchObject({ email: "preview0@x.test", attributes: { preview: "yes" } });
    expect(typeof res.json.sample[0].id).toBe("string");
  });

  it("answers 422 preview_timeout beyond the statement timeout", async () => {
    await t.ctx.db.$client`
      insert into people (workspace_id, email, attributes)
      select ${client.workspaceId}, 'bulk' || g || '@x.test', jsonb_build_object('n', g) from generate_series(1, 100000) g`;
    const conditions = { any: [{ field: "attributes.n", op: "gt", value: 99999 }, { field: "email", op: "contains", value: "zzz" }] };
    await expect(previewSegment(t.ctx.db, client.workspaceId, conditions, { timeoutMs: 1 })).rejects.toMatchObject({ code: "preview_timeout" });
    // Through the API: the same workspace, an app whose preview timeout is 1 ms.
    const slowApp = await buildApp({ ...t.ctx, env: { ...t.ctx.env, SEGMENT_PREVIEW_TIMEOUT_MS: 1 } });
    const slow = await slowApp.inject({ method: "POST", url: "/v1/segments/preview", payload: { conditions }, headers: { authorization: `Bearer ${client.apiKey}` } });
    await slowApp.close();
    expect(slow.statusCode).toBe(422);
    expect(slow.json().error.code).toBe("preview_timeout");
    // The default timeout is ample for the same preview.
    const res = await client.request("POST", "/v1/segments/preview", { payload: { conditions } });
    expect(res.status).toBe(200);
    expect(res.json.count).toBe(1);
  });
});

describe("workspace isolation", () => {
  it("answers 404 for another workspace's segment on every route, and refuses it in conditions", async () => {
    const mine = (await create({ name: "Mine", type: "static" })).json;
    const routes: [string, string, object?][] = [
      ["GET", `/v1/segments/${mine.id}`],
      ["PATCH", `/v1/segments/${mine.id}`, { name: "stolen" }],
      ["DELETE", `/v1/segments/${mine.id}`],
      ["POST", `/v1/segments/${mine.id}/recompute`],
      ["GET", `/v1/segments/${mine.id}/members`],
      ["POST", `/v1/segments/${mine.id}/members`, { users: [{ email: "a@b.c" }] }],
      ["DELETE", `/v1/segments/${mine.id}/members`, { users: [{ email: "a@b.c" }] }],
    ];
    for (const [method, url, payload] of routes) {
      const res = await other.request(method as any, url, payload ? { payload } : {});
      expect(res.status, `${method} ${url}`).toBe(404);
    }
    expect((await other.request("GET", "/v1/segments/not-a-uuid")).status).toBe(404);
    const ref = await other.request("POST", "/v1/segments", { payload: { name: "Steal", type: "dynamic", conditions: { all: [{ segment: mine.id, op: "in" }] } } });
    expect(ref.status).toBe(422);
    expect(ref.json.error.details.problems).toEqual([{ path: "all.0.segment", reason: "is not a segment of this workspace" }]);
    const preview = await other.request("POST", "/v1/segments/preview", { payload: { conditions: { segment: mine.id, op: "in" } } });
    expect(preview.status).toBe(422);
    expect((await other.request("GET", "/v1/segments")).json.data).toEqual([]);
  });
});
