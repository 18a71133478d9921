import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import { checkExportRequest, createExportSchema } from "../../src/domain/exports/request.js";
import { headerLine } from "../../src/domain/exports/write.js";

const check = (body: Record<string, unknown>) => checkExportRequest(createExportSchema.parse(body), (c) => c);

function problems(body: Record<string, unknown>) {
  try {
    check(body);
  } catch (err) {
    if (err instanceof ValidationError) return err.details as { problems: { field: string; reason: string }[] };
    throw err;
  }
  throw new Error("expected a ValidationError");
}

describe("checkExportRequest", () => {
  it("defaults users columns to the importable native fields plus labels", () => {
    expect(check({ kind: "users" })).toEqual({
      columns: ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"],
      segmentId: null,
      conditions: null,
      events: null,
      from: null,
      to: null,
      gzip: false,
      bom: false,
    });
  });

  it("accepts every native field, labels, segments and attribute columns", () => {
    const columns = ["id", "email", "external_id", "username", "first_name", "last_name", "name", "company_id", "created_at", "updated_at", "last_seen_at", "labels", "segments", "attributes.plan", "attributes.Größe_2"];
    expect(check({ kind: "users", columns }).columns).toEqual(columns);
  });

  it("normalises the range to UTC and de-duplicates event names", () => {
    expect(check({ kind: "events", events: ["a", "b", "a"], from: "2026-01-01T01:00:00+01:00", to: "2026-01-02T00:00:00Z" })).toMatchObject({
      events: ["a", "b"],
      from: "2026-01-01T00:00:00.000Z",
      to: "2026-01-02T00:00:00.000Z",
    });
  });

  it("accepts the date-only and offset-less ISO forms imports accept, read as UTC (a date alone is its midnight)", () => {
    expect(check({ kind: "events", from: "2026-01-31", to: "2026-02-01" })).toMatchObject({ from: "2026-01-31T00:00:00.000Z", to: "2026-02-01T00:00:00.000Z" });
    expect(check({ kind: "events", from: "2026-01-31T10:30", to: "2026-01-31 12:00:00" })).toMatchObject({ from: "2026-01-31T10:30:00.000Z", to: "2026-01-31T12:00:00.000Z" });
  });

  it.each(["yesterday", "2026-02-30", "01/31/2026", "1769817600", "2026-1-31"])("refuses %s as from with the forms it takes", (from) => {
    const parsed = createExportSchema.safeParse({ kind: "events", from });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(/2026-01-31/);
  });

  it("lists every problem at once", () => {
    expect(problems({ kind: "users", columns: ["nope", "attributes.", "attributes.x y"], events: ["a"] }).problems.map((p) => p.field)).toEqual([
      "events",
      "columns.0",
      "columns.1",
      "columns.2",
    ]);
  });
});

describe("headerLine", () => {
  it("writes the header as COPY writes rows: comma-separated, LF-terminated", () => {
    expect(headerLine(["email", "attributes.plan"])).toBe("email,attributes.plan\n");
  });
});
