import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import {
  attributeKey,
  normaliseHeader,
  parseTarget,
  suggestMapping,
  validateMapping,
  type MappingInput,
} from "../../src/domain/imports/mapping.js";

function mappingError(input: MappingInput): ValidationError {
  try {
    validateMapping(input);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error("expected validateMapping to throw a ValidationError");
}

function problemsOf(input: MappingInput): { field: string; reason: string }[] {
  const err = mappingError(input);
  expect(err.code).toBe("invalid_mapping");
  return (err.details as { problems: { field: string; reason: string }[] }).problems;
}

const contacts = (over: Partial<MappingInput> = {}): MappingInput => ({
  kind: "contacts",
  headers: ["Email", "First Name", "Plan"],
  identifier: "email",
  mapping: { Email: "email", "First Name": "first_name", Plan: "attribute:plan" },
  options: undefined,
  ...over,
});

describe("header helpers", () => {
  it("normalises headers for matching", () => {
    expect(normaliseHeader("E-mail Address")).toBe("emailaddress");
    expect(normaliseHeader(" User_ID ")).toBe("userid");
    expect(normaliseHeader("Größe (cm)")).toBe("größecm");
  });

  it("turns headers into attribute keys", () => {
    expect(attributeKey("Plan Type")).toBe("plan_type");
    expect(attributeKey("Segment Value")).toBe("segment_value");
    expect(attributeKey("  favorite color?! ")).toBe("favorite_color");
    expect(attributeKey("Größe / Taille")).toBe("größe_taille");
    expect(attributeKey("???")).toBe("");
    const long = attributeKey(`${"a".repeat(63)} b`);
    expect(long).toBe("a".repeat(63));
  });

  it("parses targets", () => {
    expect(parseTarget("email")).toEqual({ type: "email" });
    expect(parseTarget(" Label_IDs ")).toEqual({ type: "label_ids" });
    expect(parseTarget("attribute:plan_type")).toEqual({ type: "attribute", key: "plan_type" });
    expect(parseTarget("property:größe")).toEqual({ type: "property", key: "größe" });
    expect(() => parseTarget("attribute:plan type")).toThrow(ValidationError);
    expect(() => parseTarget("phone")).toThrow(/not a known target/);
  });
});

describe("suggestMapping", () => {
  it("maps the Jimo export", () => {
    expect(suggestMapping(["User ID", "Segment Name", "Segment Value", "plan"], "contacts")).toEqual({
      "User ID": "external_id",
      "Segment Name": "segment",
      "Segment Value": "segment_value",
      plan: "attribute:plan",
    });
  });

  it("maps the Helpmonks export", () => {
    const headers = ["email", "first_name", "last_name", "company_id", "labels", "labels_id", "favorite color"];
    expect(suggestMapping(headers, "contacts")).toEqual({
      email: "email",
      first_name: "first_name",
      last_name: "last_name",
      company_id: "company_id",
      labels: "labels",
      labels_id: "label_ids",
      "favorite color": "attribute:favorite_color",
    });
  });

  it("maps the Cohort export", () => {
    expect(suggestMapping(["Email", "First Name", "Last Name"], "contacts")).toEqual({
      Email: "email",
      "First Name": "first_name",
      "Last Name": "last_name",
    });
  });

  it("recognises spelling variants", () => {
    const headers = ["E-mail", "userid", "External ID", "user name", "Full Name", "Tags", "tag ids", "segment"];
    expect(suggestMapping(headers, "contacts")).toEqual({
      "E-mail": "email",
      userid: "external_id",
      "External ID": "attribute:external_id",
      "user name": "username",
      "Full Name": "name",
      Tags: "labels",
      "tag ids": "label_ids",
      segment: "segment",
    });
  });

  it("suggests each target once, later duplicates falling back", () => {
    expect(suggestMapping(["Email", "email address", "Plan", "plan", "???"], "contacts")).toEqual({
      Email: "email",
      "email address": "attribute:email_address",
      Plan: "attribute:plan",
      plan: "ignore",
      "???": "ignore",
    });
  });

  it("ignores unknown columns for members and knows member fields", () => {
    expect(suggestMapping(["Email", "Password", "Active", "Role", "Plan"], "members")).toEqual({
      Email: "email",
      Password: "password",
      Active: "active",
      Role: "role",
      Plan: "ignore",
    });
    expect(suggestMapping(["password"], "contacts")).toEqual({ password: "attribute:password" });
  });

  it("maps event columns and turns the rest into properties", () => {
    expect(suggestMapping(["user_id", "Event Name", "Timestamp", "date", "Order Total"], "events")).toEqual({
      user_id: "external_id",
      "Event Name": "event",
      Timestamp: "occurred_at",
      date: "property:date",
      "Order Total": "property:order_total",
    });
  });
});

describe("validateMapping", () => {
  it("fills defaults and maps absent columns to ignore", () => {
    const result = validateMapping(contacts({ mapping: { Email: "email", Plan: "Attribute:plan" } }));
    expect(result).toEqual({
      identifier: "email",
      mapping: { Email: "email", "First Name": "ignore", Plan: "attribute:plan" },
      options: { mode: "upsert", labels: "add", attributeTypes: {}, createMissingPeople: false, timezone: "UTC" },
    });
  });

  it("accepts full options for an events import and canonicalises the time zone", () => {
    const result = validateMapping({
      kind: "events",
      headers: ["user_id", "event", "when", "total"],
      identifier: "external_id",
      mapping: { user_id: "external_id", event: "event", when: "occurred_at", total: "property:total" },
      options: { mode: "update_only", createMissingPeople: true, timezone: "europe/paris" },
    });
    expect(result.options).toMatchObject({ mode: "update_only", createMissingPeople: true, timezone: "Europe/Paris" });
  });

  it("accepts attribute types and a segment to create", () => {
    const result = validateMapping(
      contacts({ options: { labels: "replace", createSegment: { name: " Spring " }, attributeTypes: { plan: "string" } } }),
    );
    expect(result.options).toMatchObject({
      labels: "replace",
      createSegment: { name: "Spring" },
      attributeTypes: { plan: "string" },
    });
  });

  it("lists every problem at once", () => {
    const err = mappingError({
      kind: "contacts",
      headers: ["Email", "E-mail", "Pwd", "Value", "Plan"],
      identifier: "username",
      mapping: {
        Email: "email",
        "E-mail": "email",
        Pwd: "password",
        Value: "segment_value",
        Plan: "attribute:plan type",
        Phone: "attribute:phone",
      },
      options: { mode: "merge", colour: "blue", timezone: "Mars/Base", attributeTypes: { plan: "text", tier: "number" } },
    });
    const problems = (err.details as { problems: { field: string; reason: string }[] }).problems;
    expect(err.message).toBe(`The mapping has ${problems.length} problems.`);
    expect(problems.map((p) => p.field).sort()).toEqual(
      [
        "mapping.Phone", // not a header
        "mapping.E-mail", // email twice
        "mapping.Pwd", // members only
        "mapping.Value", // segment_value without segment
        "mapping.Plan", // bad attribute key
        "identifier", // username not mapped
        "options.timezone", // events only
        "options.mode",
        "options.colour",
        "options.timezone", // not a zone
        "options.attributeTypes.plan", // not a type
        "options.attributeTypes.plan", // its column was rejected, so not mapped
        "options.attributeTypes.tier", // not mapped
      ].sort(),
    );
    expect(problems.find((p) => p.field === "mapping.E-mail")?.reason).toContain('column "Email"');
    expect(problems.every((p) => p.reason.length > 0)).toBe(true);
  });

  it("says 1 problem in the singular", () => {
    const err = mappingError(contacts({ identifier: "external_id" }));
    expect(err.message).toBe("The mapping has 1 problem.");
    expect(err.details).toEqual({
      problems: [{ field: "identifier", reason: 'No column is mapped to "external_id", the identifier.' }],
    });
  });

  it("matches members on email only and forbids attributes for them", () => {
    const problems = problemsOf({
      kind: "members",
      headers: ["Login", "Plan", "Role"],
      identifier: "username",
      mapping: { Login: "username", Plan: "attribute:plan", Role: "role" },
      options: {},
    });
    expect(problems.map((p) => p.field)).toEqual(["mapping.Login", "mapping.Plan", "identifier"]);
    expect(problems[0]?.reason).toBe('"username" is only for contacts or events imports, not members.');
    expect(problems[1]?.reason).toContain("only for contacts");
  });

  it("keeps members to what team_members stores and refuses a segment of members", () => {
    const problems = problemsOf({
      kind: "members",
      headers: ["Email", "Tags", "Company"],
      identifier: "email",
      mapping: { Email: "email", Tags: "labels", Company: "company_id" },
      options: { createSegment: { name: "Staff" } },
    });
    expect(problems.map((p) => p.field)).toEqual(["mapping.Tags", "mapping.Company", "options.createSegment"]);
  });

  it("lets events name their person but not edit them", () => {
    const problems = problemsOf({
      kind: "events",
      headers: ["email", "user_id", "event", "First Name"],
      identifier: "email",
      mapping: { email: "email", user_id: "external_id", event: "event", "First Name": "first_name" },
      options: { createMissingPeople: true },
    });
    expect(problems.map((p) => p.field)).toEqual(["mapping.First Name"]);
    expect(problems[0]?.reason).toBe('"first_name" is only for contacts or members imports, not events.');
  });

  it("accepts a members import with password, active and role", () => {
    const result = validateMapping({
      kind: "members",
      headers: ["Email", "Password", "Active", "Role"],
      identifier: "email",
      mapping: { Email: "email", Password: "password", Active: "active", Role: "role" },
      options: null,
    });
    expect(result.mapping).toEqual({ Email: "email", Password: "password", Active: "active", Role: "role" });
  });

  it("requires an event column for events and rejects attributes there", () => {
    const problems = problemsOf({
      kind: "events",
      headers: ["email", "plan", "when"],
      identifier: "email",
      mapping: { email: "email", plan: "attribute:plan", when: "occurred_at" },
      options: { attributeTypes: { plan: "string" } },
    });
    expect(problems.map((p) => p.field)).toEqual(["mapping.plan", "mapping", "options.attributeTypes.plan"]);
  });

  it("rejects events-only targets and non-object options for contacts", () => {
    const problems = problemsOf(
      contacts({ mapping: { Email: "email", Plan: "property:plan", "First Name": "event" }, options: "fast" }),
    );
    expect(problems.map((p) => p.field)).toEqual(["mapping.First Name", "mapping.Plan", "options"]);
  });

  it("lets several columns be ignored explicitly", () => {
    const result = validateMapping(contacts({ mapping: { Email: "email", "First Name": "ignore", Plan: "ignore" } }));
    expect(Object.values(result.mapping)).toEqual(["email", "ignore", "ignore"]);
  });
});

describe("headers of a Roster users export", () => {
  it("maps attributes.<key> back to attribute:<key>, and falls back as before for a key that is not one", () => {
    expect(suggestMapping(["email", "labels", "attributes.plan", "attributes.bad key"], "contacts")).toEqual({
      email: "email",
      labels: "labels",
      "attributes.plan": "attribute:plan",
      "attributes.bad key": "attribute:attributes_bad_key",
    });
    expect(suggestMapping(["attributes.plan"], "events")).toEqual({ "attributes.plan": "property:attributes_plan" });
  });
});
