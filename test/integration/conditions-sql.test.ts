import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { emailKey } from "../../src/domain/people/email.js";
import { compileConditions, parseConditions } from "../../src/domain/segments/conditions.js";
import { useTestContext } from "../helpers/context.js";

/**
 * Every operator and group kind against a small fixture whose expected matches were worked out by hand
 * (see the comments on each person). "Now" is fixed, so relative dates have exact answers.
 */
const t = useTestContext();
const NOW = new Date("2026-01-15T12:00:00Z");
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const DAY = 86_400_000;

interface Fixture {
  wsA: string;
  wsB: string;
  byId: Map<string, string>;
  segA: string;
  segB: string;
}
let f: Fixture;

async function seed(): Promise<Fixture> {
  const q = t.ctx.db.$client;
  const [a] = await q`insert into workspaces (name) values ('A') returning id`;
  const [b] = await q`insert into workspaces (name) values ('B') returning id`;
  const wsA = a!.id as string;
  const wsB = b!.id as string;
  const people: [string, string, Record<string, unknown>][] = [
    ["ann", wsA, { email: "Ann@Acme.com", external_id: "u1", first_name: "Ann", last_name: "Lee", name: "Ann Lee", company_id: "c1", created_at: "2025-06-01T00:00:00Z", last_seen_at: ago(DAY),
      attributes: { plan: "pro", age: 34, score: "12.5", signup: "2025-12-20T00:00:00Z", vip: true, nickname: null } }],
    ["bob", wsA, { email: "bob@example.org", external_id: "u2", username: "bobby", first_name: "Bob", company_id: "c2", created_at: "2025-12-31T00:00:00Z", last_seen_at: "2025-10-01T00:00:00Z",
      attributes: { plan: "free", age: "29", signup: "2024-02-30", vip: "false", score: 7 } }],
    ["cat", wsA, { external_id: "u3", username: "cat", first_name: "Catherine", last_name: "Ng", created_at: "2026-01-10T00:00:00Z",
      attributes: { plan: "team", age: "unknown", signup: "2025-01-10", tags: ["a"], score: "1e2" } }],
    ["dan", wsA, { email: "dan@acme.com", created_at: "2024-01-01T00:00:00Z", last_seen_at: ago(30 * 60_000), attributes: {} }],
    // eve was created exactly 2 months before NOW and last seen exactly 30 days before it: boundaries.
    ["eve", wsA, { email: "eve@acme.com.evil.io", external_id: "u5", first_name: "Eve", created_at: "2025-11-15T12:00:00Z", last_seen_at: ago(30 * DAY),
      attributes: { plan: "PRO", age: 100, signup: "2026-01-15T11:00:00+01:00", vip: false } }],
    // Another workspace's person with the same email, label, events and a segment: never visible from A.
    ["zed", wsB, { email: "ann@acme.com", external_id: "u1", created_at: "2025-06-01T00:00:00Z", attributes: { plan: "pro", age: 40 } }],
  ];
  const byId = new Map<string, string>();
  const idOf = new Map<string, number>();
  for (const [tag, ws, p] of people) {
    const [row] = await q`
      insert into people (workspace_id, email, email_key, external_id, username, first_name, last_name, name, company_id, attributes, created_at, last_seen_at)
      values (${ws}, ${(p.email as string) ?? null}, ${p.email === undefined ? null : emailKey(p.email as string)}, ${(p.external_id as string) ?? null}, ${(p.username as string) ?? null},
        ${(p.first_name as string) ?? null}, ${(p.last_name as string) ?? null}, ${(p.name as string) ?? null}, ${(p.company_id as string) ?? null},
        ${JSON.stringify(p.attributes)}::jsonb, ${p.created_at as string}, ${(p.last_seen_at as string) ?? null})
      returning id`;
    byId.set(String(row!.id), tag);
    idOf.set(tag, Number(row!.id));
  }
  const id = (tag: string) => idOf.get(tag)!;
  const label = async (ws: string, name: string, tags: string[]) => {
    const [l] = await q`insert into labels (workspace_id, name) values (${ws}, ${name}) returning id`;
    for (const tag of tags) await q`update people set label_ids = array(select unnest(label_ids) union select ${l!.id}::bigint order by 1) where id = ${id(tag)}`;
  };
  await label(wsA, "VIP", ["ann", "cat"]);
  await label(wsA, "vip", ["bob"]);
  await label(wsB, "VIP", ["zed"]);
  const event = async (ws: string, tag: string, name: string, at: string) =>
    q`insert into events (workspace_id, person_id, name, occurred_at) values (${ws}, ${id(tag)}, ${name}, ${at})`;
  for (const d of [1, 2, 3]) await event(wsA, "ann", "Clicked Upgrade", ago(d * DAY));
  for (let i = 0; i < 4; i++) await event(wsA, "bob", "Clicked Upgrade", ago(60 * DAY));
  await event(wsA, "bob", "Clicked Upgrade", ago(5 * DAY));
  await event(wsA, "cat", "Clicked Upgrade", ago(2 * DAY));
  await event(wsA, "dan", "Login", ago(10 * DAY));
  for (const d of [1, 2, 3]) await event(wsB, "zed", "Clicked Upgrade", ago(d * DAY));
  const [sa] = await q`insert into segments (workspace_id, name, type) values (${wsA}, 'S1', 'static') returning id`;
  const [sb] = await q`insert into segments (workspace_id, name, type) values (${wsB}, 'S1', 'static') returning id`;
  for (const tag of ["bob", "dan"]) await q`insert into segment_memberships (workspace_id, segment_id, person_id) values (${wsA}, ${sa!.id}, ${id(tag)})`;
  await q`insert into segment_memberships (workspace_id, segment_id, person_id) values (${wsB}, ${sb!.id}, ${id("zed")})`;
  return { wsA, wsB, byId, segA: sa!.id as string, segB: sb!.id as string };
}

/** The tags of the people of `ws` matching the condition, sorted. */
async function match(cond: unknown, ws = f.wsA): Promise<string[]> {
  const predicate = compileConditions(parseConditions(cond), { workspaceId: ws, now: NOW });
  const rows = await t.ctx.db.execute<{ id: string }>(sql`select p.id::text as id from people p where p.workspace_id = ${ws} and ${predicate}`);
  return rows.map((r) => f.byId.get(r.id)!).sort();
}

const field = (fieldName: string, op: string, value?: unknown) => (value === undefined ? { field: fieldName, op } : { field: fieldName, op, value });

beforeAll(async () => {
  f = await seed();
});

describe("native text fields", () => {
  it.each([
    ["email eq is case-insensitive", field("email", "eq", "ann@acme.com"), ["ann"]],
    ["email neq includes people without an email", field("email", "neq", "ann@acme.com"), ["bob", "cat", "dan", "eve"]],
    ["email in", field("email", "in", ["DAN@acme.com", "bob@example.org", "x@y.z"]), ["bob", "dan"]],
    ["email not_in", field("email", "not_in", ["DAN@acme.com", "bob@example.org", "x@y.z"]), ["ann", "cat", "eve"]],
    ["email contains ignores case", field("email", "contains", "ACME"), ["ann", "dan", "eve"]],
    ["email not_contains includes people without an email", field("email", "not_contains", "acme"), ["bob", "cat"]],
    ["email starts_with", field("email", "starts_with", "eve@"), ["eve"]],
    ["email ends_with", field("email", "ends_with", "@acme.com"), ["ann", "dan"]],
    ["first_name eq is exact", field("first_name", "eq", "Ann"), ["ann"]],
    ["first_name eq is case-sensitive", field("first_name", "eq", "ann"), []],
    ["username exists", field("username", "exists"), ["bob", "cat"]],
    ["username not_exists", field("username", "not_exists"), ["ann", "dan", "eve"]],
    ["external_id in", field("external_id", "in", ["u1", "u3"]), ["ann", "cat"]],
    ["company_id neq", field("company_id", "neq", "c1"), ["bob", "cat", "dan", "eve"]],
    ["name contains", field("name", "contains", "lee"), ["ann"]],
    ["last_name ends_with", field("last_name", "ends_with", "G"), ["cat"]],
  ])("%s", async (_name, cond, expected) => {
    expect(await match(cond)).toEqual(expected);
  });
});

describe("native date fields", () => {
  it.each([
    ["created_at before (strict)", field("created_at", "before", "2025-06-01"), ["dan"]],
    ["created_at after (strict)", field("created_at", "after", "2025-12-31"), ["cat"]],
    ["created_at gte", field("created_at", "gte", "2025-12-31"), ["bob", "cat"]],
    ["created_at gt", field("created_at", "gt", "2025-12-31T00:00:00Z"), ["cat"]],
    ["created_at lt", field("created_at", "lt", "2025-06-01T00:00:01Z"), ["ann", "dan"]],
    ["created_at lte", field("created_at", "lte", "2025-06-01"), ["ann", "dan"]],
    ["created_at between is inclusive", field("created_at", "between", ["2025-06-01", "2025-12-31"]), ["ann", "bob", "eve"]],
    ["created_at eq", field("created_at", "eq", "2025-12-31T00:00:00Z"), ["bob"]],
    ["created_at neq", field("created_at", "neq", "2025-12-31T00:00:00Z"), ["ann", "cat", "dan", "eve"]],
    ["created_at more_than_ago 2 months (boundary excluded)", field("created_at", "more_than_ago", { amount: 2, unit: "month" }), ["ann", "dan"]],
    ["last_seen_at within_last 30 days (boundary included)", field("last_seen_at", "within_last", { amount: 30, unit: "day" }), ["ann", "dan", "eve"]],
    ["last_seen_at within_last 1 week", field("last_seen_at", "within_last", { amount: 1, unit: "week" }), ["ann", "dan"]],
    ["last_seen_at within_last 1 hour", field("last_seen_at", "within_last", { amount: 1, unit: "hour" }), ["dan"]],
    ["last_seen_at within_last 90 minutes", field("last_seen_at", "within_last", { amount: 90, unit: "minute" }), ["dan"]],
    ["last_seen_at more_than_ago 3 months", field("last_seen_at", "more_than_ago", { amount: 3, unit: "month" }), ["bob"]],
    ["last_seen_at not_exists", field("last_seen_at", "not_exists"), ["cat"]],
    ["last_seen_at exists", field("last_seen_at", "exists"), ["ann", "bob", "dan", "eve"]],
  ])("%s", async (_name, cond, expected) => {
    expect(await match(cond)).toEqual(expected);
  });
});

describe("attributes, compared by the type of the condition's value", () => {
  it.each([
    ["string eq is exact", field("attributes.plan", "eq", "pro"), ["ann"]],
    ["string neq includes people without the attribute", field("attributes.plan", "neq", "pro"), ["bob", "cat", "dan", "eve"]],
    ["in", field("attributes.plan", "in", ["pro", "team"]), ["ann", "cat"]],
    ["not_in", field("attributes.plan", "not_in", ["pro", "team"]), ["bob", "dan", "eve"]],
    ["in with mixed value types", field("attributes.age", "in", [34, "29"]), ["ann", "bob"]],
    ["in with a boolean", field("attributes.vip", "in", [true, "nobody"]), ["ann"]],
    ["not_in with a boolean", field("attributes.vip", "not_in", [false]), ["ann", "cat", "dan"]],
    ["contains ignores case", field("attributes.plan", "contains", "PR"), ["ann", "eve"]],
    ["not_contains", field("attributes.plan", "not_contains", "r"), ["cat", "dan"]],
    ["starts_with", field("attributes.plan", "starts_with", "f"), ["bob"]],
    ["ends_with", field("attributes.plan", "ends_with", "AM"), ["cat"]],
    ["number gt: JSON numbers; a non-numeric string does not match", field("attributes.age", "gt", 30), ["ann", "eve"]],
    ["number lte matches a numeric string", field("attributes.age", "lte", 29), ["bob"]],
    ["number gte with decimal and exponent strings", field("attributes.score", "gte", 10), ["ann", "cat"]],
    ["number lt", field("attributes.score", "lt", 10), ["bob"]],
    ["number between", field("attributes.age", "between", [29, 34]), ["ann", "bob"]],
    ["number eq", field("attributes.age", "eq", 34), ["ann"]],
    ["string eq compares the text form of a number", field("attributes.age", "eq", "34"), ["ann"]],
    ["boolean eq true", field("attributes.vip", "eq", true), ["ann"]],
    ["boolean eq false also matches the string 'false'", field("attributes.vip", "eq", false), ["bob", "eve"]],
    ["date after; an impossible stored date does not match (no error)", field("attributes.signup", "after", "2025-12-01"), ["ann", "eve"]],
    ["date before", field("attributes.signup", "before", "2025-06-01"), ["cat"]],
    ["date gte with an offset", field("attributes.signup", "gte", "2026-01-15T11:00:00+01:00"), ["eve"]],
    ["date between", field("attributes.signup", "between", ["2025-01-01", "2025-12-31"]), ["ann", "cat"]],
    ["date within_last", field("attributes.signup", "within_last", { amount: 30, unit: "day" }), ["ann", "eve"]],
    ["date more_than_ago", field("attributes.signup", "more_than_ago", { amount: 1, unit: "week" }), ["ann", "cat"]],
    ["a number condition never matches date strings", field("attributes.signup", "gt", 5), []],
    ["a date condition never matches numbers", field("attributes.age", "gt", "2000-01-01"), []],
    ["exists ignores JSON null", field("attributes.nickname", "exists"), []],
    ["exists", field("attributes.vip", "exists"), ["ann", "bob", "eve"]],
    ["not_exists", field("attributes.vip", "not_exists"), ["cat", "dan"]],
    ["an array attribute equals no scalar", field("attributes.tags", "eq", "a"), []],
    ["an array attribute does not equal its own JSON text", field("attributes.tags", "eq", '["a"]'), []],
    ["an array attribute is in no list, even one holding its JSON text", field("attributes.tags", "in", ['["a"]', "a"]), []],
    ["so not_in an array's JSON text includes the person with the array", field("attributes.tags", "not_in", ['["a"]']), ["ann", "bob", "cat", "dan", "eve"]],
    ["an array attribute contains no text", field("attributes.tags", "contains", "a"), []],
    ["odd keys are just keys", field("attributes.x'); drop table people; --", "exists"), []],
  ])("%s", async (_name, cond, expected) => {
    expect(await match(cond)).toEqual(expected);
  });
});

describe("labels, events and segments", () => {
  it.each([
    ["label has", { label: "VIP", op: "has" }, ["ann", "cat"]],
    ["label names are case-sensitive", { label: "vip", op: "has" }, ["bob"]],
    ["label has_not", { label: "VIP", op: "has_not" }, ["bob", "dan", "eve"]],
    ["event performed", { event: "Clicked Upgrade", op: "performed" }, ["ann", "bob", "cat"]],
    ["event not_performed", { event: "Clicked Upgrade", op: "not_performed" }, ["dan", "eve"]],
    ["event count gte 3 (any time)", { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 } }, ["ann", "bob"]],
    ["event count gte 3 within 30 days", { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } }, ["ann"]],
    ["event within 7 days", { event: "Clicked Upgrade", op: "performed", within: { amount: 7, unit: "day" } }, ["ann", "bob", "cat"]],
    ["event count eq 1", { event: "Clicked Upgrade", op: "performed", count: { op: "eq", value: 1 } }, ["cat"]],
    ["event count eq 1 within 30 days", { event: "Clicked Upgrade", op: "performed", count: { op: "eq", value: 1 }, within: { amount: 30, unit: "day" } }, ["bob", "cat"]],
    ["event count lt 3 means performed, fewer than 3 times", { event: "Clicked Upgrade", op: "performed", count: { op: "lt", value: 3 } }, ["cat"]],
    ["event count gt 4", { event: "Clicked Upgrade", op: "performed", count: { op: "gt", value: 4 } }, ["bob"]],
    ["event count lte 3", { event: "Clicked Upgrade", op: "performed", count: { op: "lte", value: 3 } }, ["ann", "cat"]],
    ["event count neq 3", { event: "Clicked Upgrade", op: "performed", count: { op: "neq", value: 3 } }, ["bob", "cat"]],
    ["event not_performed is the negation, counts and window included", { event: "Clicked Upgrade", op: "not_performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } }, ["bob", "cat", "dan", "eve"]],
    ["event window too short", { event: "Login", op: "performed", within: { amount: 1, unit: "week" } }, []],
    ["event window long enough", { event: "Login", op: "performed", within: { amount: 2, unit: "week" } }, ["dan"]],
  ])("%s", async (_name, cond, expected) => {
    expect(await match(cond)).toEqual(expected);
  });

  it("segment in / not_in read the membership table", async () => {
    expect(await match({ segment: f.segA, op: "in" })).toEqual(["bob", "dan"]);
    expect(await match({ segment: f.segA, op: "not_in" })).toEqual(["ann", "cat", "eve"]);
  });
});

describe("groups", () => {
  it.each([
    ["all", { all: [field("email", "ends_with", "@acme.com"), { label: "VIP", op: "has" }] }, ["ann"]],
    ["any", { any: [{ label: "vip", op: "has" }, field("attributes.age", "gt", 50)] }, ["bob", "eve"]],
    ["not", { not: { any: [field("email", "exists")] } }, ["cat"]],
    ["empty all matches everyone", { all: [] }, ["ann", "bob", "cat", "dan", "eve"]],
    ["empty any matches no one", { any: [] }, []],
    ["not of a condition on a missing value is its exact complement", { not: field("attributes.plan", "eq", "pro") }, ["bob", "cat", "dan", "eve"]],
  ])("%s", async (_name, cond, expected) => {
    expect(await match(cond)).toEqual(expected);
  });

  it("nests freely", async () => {
    const cond = {
      all: [
        { any: [{ label: "VIP", op: "has" }, { segment: f.segA, op: "in" }] },
        { not: { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 } } },
      ],
    };
    expect(await match(cond)).toEqual(["cat", "dan"]);
  });
});

describe("workspace isolation inside the predicate", () => {
  it("label, event and segment lookups only see the compiling workspace, even over every person", async () => {
    const everyone = async (cond: unknown, ws: string) => {
      const predicate = compileConditions(parseConditions(cond), { workspaceId: ws, now: NOW });
      const rows = await t.ctx.db.execute<{ id: string }>(sql`select p.id::text as id from people p where ${predicate}`);
      return rows.map((r) => f.byId.get(r.id)!).sort();
    };
    expect(await everyone({ label: "VIP", op: "has" }, f.wsA)).toEqual(["ann", "cat"]);
    expect(await everyone({ label: "VIP", op: "has" }, f.wsB)).toEqual(["zed"]);
    expect(await everyone({ event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 } }, f.wsA)).toEqual(["ann", "bob"]);
    expect(await everyone({ segment: f.segB, op: "in" }, f.wsA)).toEqual([]);
    expect(await match(field("email", "eq", "ann@acme.com"), f.wsB)).toEqual(["zed"]);
  });
});
