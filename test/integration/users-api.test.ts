 
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fingerprint } from "../../src/domain/idempotency.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { memberIds, membershipEvents, waitForComputed } from "../helpers/segments.js";

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

const identify = (c: Client, body: object, headers: Record<string, string> = {}) => c.request("POST", "/v1/users/identify", { payload: body, headers });
const track = (c: Client, events: object[]) => c.request("POST", "/v1/events", { payload: { events } });
const createSegment = async (c: Client, body: object) => {
  const res = await c.request("POST", "/v1/segments", { payload: body });
  if (res.status !== 201) throw new Error(`create segment: ${res.status} ${res.body}`);
  return waitForComputed(c, res.json.id);
};

describe("identify", () => {
  it("creates, then updates by any identifier, merging attributes and adding labels", async () => {
    const created = await identify(client, { externalId: "id-1", email: "Ida@Example.com", firstName: "Ida", attributes: { plan: "free", seats: 3 }, labels: ["Trial"] });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ externalId: "id-1", email: "Ida@Example.com", firstName: "Ida", attributes: { plan: "free", seats: 3 }, created: true });
    expect(created.headers.location).toBe(`/v1/users/${created.json.id}`);
    expect(typeof created.json.id).toBe("string");
    const updated = await identify(client, { email: "ida@example.com", lastName: "Moss", attributes: { plan: "pro" }, labels: ["VIP", "Trial"] });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ id: created.json.id, firstName: "Ida", lastName: "Moss", attributes: { plan: "pro", seats: 3 }, created: false });
    const profile = await client.request("GET", `/v1/users/${created.json.id}`);
    expect(profile.json.labels.map((l: any) => l.name)).toEqual(["Trial", "VIP"]);
    expect(profile.json.lastSeenAt).not.toBeNull();
  });

  it("refuses identifiers of two different people (409), a bad email and no identifier (422)", async () => {
    await identify(client, { externalId: "conf-1", email: "conf1@x.test" });
    await identify(client, { externalId: "conf-2", email: "conf2@x.test" });
    const conflict = await identify(client, { externalId: "conf-1", email: "conf2@x.test" });
    expect(conflict.status).toBe(409);
    expect(conflict.json.error.code).toBe("identity_conflict");
    const moved = await identify(client, { externalId: "conf-3", email: "conf1@x.test" });
    expect(moved.status).toBe(409);
    expect(moved.json.error.code).toBe("identity_conflict");
    expect((await identify(client, { email: "not an email" })).json.error.code).toBe("invalid_email");
    const none = await identify(client, { firstName: "Nobody" });
    expect(none.status).toBe(422);
    expect(none.json.error.details.problems[0].field).toBe("body.externalId");
  });

  it("re-evaluates the person's dynamic segments at once, composed ones included, with exact events", async () => {
    const pro = await createSegment(client, { name: "RT pro", type: "dynamic", conditions: { field: "attributes.rtplan", op: "eq", value: "pro" } });
    const proVip = await createSegment(client, { name: "RT pro VIP", type: "dynamic", conditions: { all: [{ segment: pro.id, op: "in" }, { label: "RT-VIP", op: "has" }] } });
    const first = await identify(client, { externalId: "rt-1", attributes: { rtplan: "pro" }, labels: ["RT-VIP"] });
    expect(first.json.segments).toEqual({ entered: [pro.id, proVip.id], left: [] });
    const id = first.json.id;
    expect(await memberIds(client, pro.id)).toEqual([id]);
    expect(await memberIds(client, proVip.id)).toEqual([id]);
    expect((await client.request("GET", `/v1/segments/${pro.id}`)).json.memberCount).toBe(1);

    // The same data again: no change, no event.
    const same = await identify(client, { externalId: "rt-1", attributes: { rtplan: "pro" } });
    expect(same.json.segments).toEqual({ entered: [], left: [] });

    const downgraded = await identify(client, { externalId: "rt-1", attributes: { rtplan: "free" } });
    expect(downgraded.json.segments).toEqual({ entered: [], left: [pro.id, proVip.id] });
    expect(await membershipEvents(t.ctx, pro.id)).toEqual([`segment.entered:${id}`, `segment.left:${id}`]);
    expect(await membershipEvents(t.ctx, proVip.id)).toEqual([`segment.entered:${id}`, `segment.left:${id}`]);
    expect((await client.request("GET", `/v1/segments/${pro.id}`)).json.memberCount).toBe(0);
  });

  it("replays with the same Idempotency-Key", async () => {
    const a = await identify(client, { externalId: "idem-u" }, { "idempotency-key": "identify-1" });
    const b = await identify(client, { externalId: "idem-u" }, { "idempotency-key": "identify-1" });
    expect(b.status).toBe(a.status);
    expect(b.json.id).toBe(a.json.id);
    expect(a.headers.location).toBe(`/v1/users/${a.json.id}`);
    expect(b.headers.location).toBe(a.headers.location);
    expect((await identify(client, { externalId: "idem-other" }, { "idempotency-key": "identify-1" })).status).toBe(422);
  });

  it("replays tracked events with the same Idempotency-Key, recording them once; another request with the key is 422", async () => {
    await identify(client, { externalId: "idem-tracker" });
    const events = [{ user: { externalId: "idem-tracker" }, event: "Idem Clicked" }];
    const send = (body: object) => client.request("POST", "/v1/events", { payload: body, headers: { "idempotency-key": "track-1" } });
    const first = await send({ events });
    const again = await send({ events });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(again.headers.location).toBeUndefined();
    expect(await t.ctx.db.$client`select 1 from events where workspace_id = ${client.workspaceId} and name = 'Idem Clicked'`).toHaveLength(1);
    expect((await send({ events: [...events, ...events] })).status).toBe(422);
  });

  it("fingerprints a request as before the idempotency option (method, path and body), so stored keys still replay", async () => {
    const body = { externalId: "stored-before", attributes: { plan: "pro" } };
    expect((await identify(client, body, { "idempotency-key": "fingerprint-1" })).status).toBe(201);
    const [row] = await t.ctx.db.$client`select request_hash from idempotency_keys where workspace_id = ${client.workspaceId} and key = 'fingerprint-1'`;
    expect(row?.request_hash).toBe(fingerprint({ route: "POST /v1/users/identify", ...body }));
  });
});

describe("events", () => {
  it("records events and enters an event-count segment in real time; old events outside the window do not count", async () => {
    const u = await identify(client, { email: "tracker@x.test" });
    const seg = await createSegment(client, {
      name: "Upgraders",
      type: "dynamic",
      conditions: { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } },
    });
    const old = new Date(Date.now() - 60 * 86_400_000).toISOString();
    const r1 = await track(client, [
      { user: { email: "TRACKER@x.test" }, event: "Clicked Upgrade", properties: { button: "top" } },
      { user: { email: "tracker@x.test" }, event: "Clicked Upgrade" },
      { user: { email: "tracker@x.test" }, event: "Clicked Upgrade", occurredAt: old },
      { user: { externalId: "nobody" }, event: "Clicked Upgrade" },
    ]);
    expect(r1.status).toBe(200);
    expect(r1.json).toMatchObject({ accepted: 3, rejected: [{ index: 3, code: "unknown_user" }], segments: { entered: [], left: [] } });
    const r2 = await track(client, [{ user: { email: "tracker@x.test" }, event: "Clicked Upgrade" }]);
    expect(r2.json.segments.entered).toEqual([{ segmentId: seg.id, personId: u.json.id }]);
    expect(await membershipEvents(t.ctx, seg.id)).toEqual([`segment.entered:${u.json.id}`]);

    const profile = await client.request("GET", `/v1/users/${u.json.id}`);
    expect(profile.json.segments).toEqual([{ id: seg.id, name: "Upgraders", type: "dynamic", value: null, enteredAt: expect.any(String) }]);
    const names = profile.json.recentEvents.map((e: any) => e.event);
    expect(names.filter((n: string) => n === "Clicked Upgrade")).toHaveLength(4);
    expect(names).toContain("segment.entered");
    expect(profile.json.recentEvents.find((e: any) => e.properties.button === "top")).toBeDefined();
    expect(profile.json.recentEvents.at(-1).occurredAt).toBe(old);
  });

  it("leaves a not_performed segment in real time", async () => {
    const u = await identify(client, { externalId: "quiet-1" });
    const seg = await createSegment(client, { name: "Never logged in", type: "dynamic", conditions: { all: [{ field: "external_id", op: "starts_with", value: "quiet-" }, { event: "Login", op: "not_performed" }] } });
    expect(await memberIds(client, seg.id)).toEqual([u.json.id]);
    const res = await track(client, [{ user: { externalId: "quiet-1" }, event: "Login" }]);
    expect(res.json.segments.left).toEqual([{ segmentId: seg.id, personId: u.json.id }]);
    expect(await memberIds(client, seg.id)).toEqual([]);
  });

  it("refuses reserved names and bad dates with paths, and more than 1000 events", async () => {
    const res = await track(client, [
      { user: { email: "tracker@x.test" }, event: "segment.entered" },
      { user: { email: "tracker@x.test" }, event: "ok", occurredAt: "yesterday" },
    ]);
    expect(res.status).toBe(422);
    expect(res.json.error.details.problems.map((p: any) => p.field)).toEqual(["events.0.event", "events.1.occurredAt"]);
    const many = Array.from({ length: 1001 }, () => ({ user: { email: "tracker@x.test" }, event: "x" }));
    expect((await track(client, many)).status).toBe(422);
  });
});

describe("listing and search", () => {
  it("lists people with keyset pagination and by segment", async () => {
    const ws = await createClient(t.ctx, client.app, "Listing");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await identify(ws, { externalId: `list-${i}`, attributes: { even: i % 2 === 0 } })).json.id);
    const p1 = await ws.request("GET", "/v1/users?limit=2");
    expect(p1.json.data.map((u: any) => u.id)).toEqual(ids.slice(0, 2));
    const p2 = await ws.request("GET", `/v1/users?limit=2&cursor=${p1.json.nextCursor}`);
    const p3 = await ws.request("GET", `/v1/users?limit=2&cursor=${p2.json.nextCursor}`);
    expect([...p2.json.data, ...p3.json.data].map((u: any) => u.id)).toEqual(ids.slice(2));
    expect(p3.json.nextCursor).toBeNull();
    const even = await createSegment(ws, { name: "Even", type: "dynamic", conditions: { field: "attributes.even", op: "eq", value: true } });
    const bySeg = await ws.request("GET", `/v1/users?segmentId=${even.id}`);
    expect(bySeg.json.data.map((u: any) => u.id)).toEqual([ids[0], ids[2], ids[4]]);
    expect((await other.request("GET", `/v1/users?segmentId=${even.id}`)).status).toBe(404);
  });

  it("searches with the condition language", async () => {
    const ws = await createClient(t.ctx, client.app, "Search");
    const a = await identify(ws, { email: "s1@acme.test", attributes: { score: 10 } });
    await identify(ws, { email: "s2@other.test", attributes: { score: 50 } });
    const c = await identify(ws, { email: "s3@acme.test", attributes: { score: 90 } });
    const res = await ws.request("POST", "/v1/users/search", { payload: { conditions: { all: [{ field: "email", op: "ends_with", value: "@acme.test" }] }, limit: 1 } });
    expect(res.json.data.map((u: any) => u.id)).toEqual([a.json.id]);
    const next = await ws.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "ends_with", value: "@acme.test" }, cursor: res.json.nextCursor } });
    expect(next.json).toEqual({ data: [expect.objectContaining({ id: c.json.id })], nextCursor: null });
    const bad = await ws.request("POST", "/v1/users/search", { payload: { conditions: { any: [{ field: "attributes.score", op: "gt", value: "lots" }] } } });
    expect(bad.status).toBe(422);
    expect(bad.json.error).toMatchObject({ code: "invalid_conditions", details: { problems: [{ path: "any.0.value" }] } });
  });
});

describe("workspace isolation", () => {
  it("keeps people, profiles and events apart between workspaces", async () => {
    const mine = await identify(client, { email: "shared@x.test", attributes: { ws: "mine" } });
    const theirs = await identify(other, { email: "shared@x.test", attributes: { ws: "theirs" } });
    expect(theirs.status).toBe(201);
    expect(theirs.json.id).not.toBe(mine.json.id);
    expect((await other.request("GET", `/v1/users/${mine.json.id}`)).status).toBe(404);
    expect((await client.request("GET", "/v1/users/not-a-number")).status).toBe(404);
    const tracked = await track(other, [{ user: { email: "shared@x.test" }, event: "Only theirs" }]);
    expect(tracked.json.accepted).toBe(1);
    const mineProfile = await client.request("GET", `/v1/users/${mine.json.id}`);
    expect(mineProfile.json.attributes).toEqual({ ws: "mine" });
    expect(mineProfile.json.recentEvents.map((e: any) => e.event)).not.toContain("Only theirs");
    const search = await other.request("POST", "/v1/users/search", { payload: { conditions: { field: "email", op: "eq", value: "shared@x.test" } } });
    expect(search.json.data.map((u: any) => u.id)).toEqual([theirs.json.id]);
  });
});
