import { PgDialect } from "drizzle-orm/pg-core";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import {
  compileConditions,
  conditionSchema,
  MAX_DEPTH,
  MAX_NODES,
  normaliseIsoDate,
  parseConditions,
  referencedSegments,
  type Condition,
} from "../../src/domain/segments/conditions.js";

const dialect = new PgDialect();
const ctx = { workspaceId: "00000000-0000-4000-8000-000000000001", now: new Date("2026-01-15T12:00:00Z") };
const render = (c: unknown) => dialect.sqlToQuery(compileConditions(parseConditions(c), ctx));

function problemsOf(input: unknown): { path: string; reason: string }[] {
  try {
    parseConditions(input);
  } catch (err) {
    if (err instanceof ValidationError) {
      expect(err.code).toBe("invalid_conditions");
      return (err.details as { problems: { path: string; reason: string }[] }).problems;
    }
    throw err;
  }
  throw new Error("expected parseConditions to throw");
}

function nested(depth: number): unknown {
  let c: unknown = { field: "email", op: "exists" };
  for (let i = 1; i < depth; i++) c = { all: [c] };
  return c;
}

describe("parseConditions", () => {
  it("accepts every group kind and condition kind", () => {
    const input = {
      all: [
        { field: "email", op: "ends_with", value: "@acme.com" },
        { any: [{ label: "VIP", op: "has" }, { event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 3 }, within: { amount: 30, unit: "day" } }] },
        { not: { segment: "7f1b7a52-7a4e-4c55-9a57-2b0f3e0f1a11", op: "in" } },
        { field: "attributes.plan", op: "in", value: ["pro", "team"] },
        { field: "created_at", op: "more_than_ago", value: { amount: 2, unit: "month" } },
      ],
    };
    const parsed = parseConditions(input);
    expect(referencedSegments(parsed)).toEqual(["7f1b7a52-7a4e-4c55-9a57-2b0f3e0f1a11"]);
  });

  it("names the JSON path of an unknown operator", () => {
    expect(problemsOf({ all: [{ field: "email", op: "like", value: "x" }] })).toEqual([
      { path: "all.0.op", reason: expect.stringMatching(/expected one of/i) },
    ]);
  });

  it("names the path of an unknown field, an unknown key and a wrong value type", () => {
    expect(problemsOf({ any: [{ field: "password", op: "eq", value: "x" }] })[0]!.path).toBe("any.0.field");
    expect(problemsOf({ label: "VIP", op: "has", colour: "red" })).toEqual([{ path: "colour", reason: "is not a known key" }]);
    expect(problemsOf({ all: [{ not: { field: "email", op: "eq", value: 3 } }] })[0]!.path).toBe("all.0.not.value");
    expect(problemsOf({ all: [{ field: "attributes.age", op: "gt", value: "old" }] })[0]).toEqual({
      path: "all.0.value",
      reason: "must be a number or an ISO-8601 date",
    });
    expect(problemsOf({ event: "x", op: "performed", count: { op: "gte", value: -1 } })[0]!.path).toBe("count.value");
    expect(problemsOf({ segment: "not-a-uuid", op: "in" })[0]!.path).toBe("segment");
  });

  it("refuses operators that do not apply to the field's kind", () => {
    expect(problemsOf({ field: "email", op: "gt", value: 3 })[0]!.path).toBe("op");
    expect(problemsOf({ field: "created_at", op: "contains", value: "2024" })[0]!.path).toBe("op");
    expect(problemsOf({ field: "created_at", op: "after", value: "yesterday" })[0]!.path).toBe("value");
  });

  it("requires a value where the operator takes one and refuses one where it does not", () => {
    expect(problemsOf({ field: "email", op: "eq" })).toEqual([{ path: "value", reason: "is required for eq" }]);
    expect(problemsOf({ field: "email", op: "exists", value: true })).toEqual([{ path: "value", reason: "must be absent for exists" }]);
  });

  it("refuses between bounds of mixed kinds and an impossible date", () => {
    expect(problemsOf({ field: "attributes.x", op: "between", value: [1, "2024-01-01"] })[0]!.path).toBe("value");
    expect(problemsOf({ field: "attributes.x", op: "before", value: "2024-02-30" })[0]!.path).toBe("value");
  });

  it("refuses trees nested deeper than the limit, and accepts the limit itself", () => {
    expect(() => parseConditions(nested(MAX_DEPTH))).not.toThrow();
    expect(problemsOf(nested(MAX_DEPTH + 1))[0]!.reason).toMatch(/nested more than/);
    // Far deeper input must not overflow the stack: the walk stops at the limit.
    expect(problemsOf(nested(100_000))[0]!.reason).toMatch(/nested more than/);
  });

  it("refuses trees with more nodes than the limit", () => {
    const many = { any: Array.from({ length: MAX_NODES }, () => ({ label: "a", op: "has" })) };
    expect(problemsOf(many)[0]!.reason).toMatch(/more than 200 nodes/);
  });

  it("refuses something that is not a condition at all", () => {
    expect(problemsOf("email = x")).toEqual([{ path: "", reason: expect.stringMatching(/must be an object/) }]);
    expect(problemsOf({ field: "email", label: "x", op: "eq" })[0]!.reason).toMatch(/more than one/);
  });

  it("is also available as a zod schema whose issues carry the path", () => {
    const res = conditionSchema.safeParse({ all: [{ field: "email", op: "nope", value: "x" }] });
    expect(res.success).toBe(false);
    expect(res.error!.issues[0]!.path).toEqual(["all", "0", "op"]);
    const ok = conditionSchema.safeParse({ label: "VIP", op: "has" });
    expect(ok.data).toEqual({ label: "VIP", op: "has" } satisfies Condition);
  });
});

describe("normaliseIsoDate", () => {
  it("reads date-only and offset-less date-times as UTC and honours offsets", () => {
    expect(normaliseIsoDate("2024-05-01")).toBe("2024-05-01T00:00:00.000Z");
    expect(normaliseIsoDate("2024-05-01T10:30")).toBe("2024-05-01T10:30:00.000Z");
    expect(normaliseIsoDate("2024-05-01T10:30:00+02:00")).toBe("2024-05-01T08:30:00.000Z");
    expect(normaliseIsoDate("2024-02-29")).toBe("2024-02-29T00:00:00.000Z");
    expect(normaliseIsoDate("2023-02-29")).toBeNull();
    expect(normaliseIsoDate("01/05/2024")).toBeNull();
  });
});

describe("compileConditions", () => {
  it("binds every value and attribute key as a parameter, never as SQL text", () => {
    const evil = "x'; drop table people; --";
    const q = render({
      all: [
        { field: "email", op: "eq", value: evil },
        { field: `attributes.${evil}`, op: "contains", value: evil },
        { label: evil, op: "has" },
        { event: evil, op: "performed" },
        { field: "attributes.n", op: "in", value: [evil, 7, true] },
      ],
    });
    expect(q.sql).not.toContain("drop table");
    expect(q.params.filter((p) => p === evil).length).toBeGreaterThanOrEqual(5);
  });

  it("evaluates relative dates at the given time", () => {
    const q = render({ field: "last_seen_at", op: "within_last", value: { amount: 30, unit: "day" } });
    expect(q.params).toContain("2026-01-15T12:00:00.000Z");
    expect(q.sql).toContain("interval '1 day'");
  });

  it("scopes label, event and segment lookups to the workspace", () => {
    for (const c of [{ label: "VIP", op: "has" }, { event: "e", op: "performed" }, { segment: "7f1b7a52-7a4e-4c55-9a57-2b0f3e0f1a11", op: "in" }]) {
      expect(render(c).params).toContain(ctx.workspaceId);
    }
  });

  it("compiles empty groups to constants: all [] matches everyone, any [] no one", () => {
    expect(render({ all: [] }).sql).toBe("(true)");
    expect(render({ any: [] }).sql).toBe("(false)");
  });
});
