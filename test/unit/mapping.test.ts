import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import {
  attributeKey,
  mergeMapping,
  normaliseHeader,
  parseTarget,
  resolveRequestedMapping,
  suggestMapping,
  validateMapping,
  type MappingInput,
} from "../../src/domain/imports/mapping.js";
import { splitLabels } from "../../src/domain/imports/rows.js";
import { isSecretHeader } from "../../src/domain/imports/secrets.js";

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
  it("remembers a layout: the same frozen suggestion for the same kind and headers, none shared across kinds or orders", () => {
    const headers = ["Email", "First Name", "Plan"];
    const first = suggestMapping(headers, "contacts");
    expect(suggestMapping([...headers], "contacts")).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toEqual({ Email: "email", "First Name": "first_name", Plan: "attribute:plan" });
    expect(suggestMapping(headers, "members")).not.toBe(first);
    expect(suggestMapping(["Plan", "Email", "First Name"], "contacts")).not.toBe(first);
    // A header holding the separator of another list is another layout.
    expect(suggestMapping(["a,b"], "contacts")).not.toEqual(suggestMapping(["a", "b"], "contacts"));
  });

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
    // A password is a secret: a contacts import leaves it out (issue 13, item 4).
    expect(suggestMapping(["password"], "contacts")).toEqual({ password: "ignore" });
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

describe("resolveRequestedMapping", () => {
  const headers = ["Email", "First Name", "Plan"];
  it("is the suggestion merged with the request and validated, remembered (frozen) for the same request", () => {
    const first = resolveRequestedMapping("contacts", headers, "email", { Plan: "attribute:tier" }, { mode: "create_only" });
    expect(first).toEqual(
      validateMapping({ kind: "contacts", headers, identifier: "email", mapping: mergeMapping(headers, suggestMapping(headers, "contacts"), { Plan: "attribute:tier" }), options: { mode: "create_only" } }),
    );
    expect(resolveRequestedMapping("contacts", [...headers], "email", { Plan: "attribute:tier" }, { mode: "create_only" })).toBe(first);
    expect(Object.isFrozen(first.mapping) && Object.isFrozen(first.options)).toBe(true);
    expect(resolveRequestedMapping("contacts", headers, "email", { Plan: "attribute:tier" }, undefined)).not.toBe(first);
    expect(resolveRequestedMapping("contacts", headers, "email", "suggested", undefined).mapping).toEqual(suggestMapping(headers, "contacts"));
  });

  it("refuses an invalid request every time, remembering nothing", () => {
    for (let i = 0; i < 2; i++) expect(() => resolveRequestedMapping("contacts", headers, "phone", undefined, undefined)).toThrow(ValidationError);
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

describe("secret-looking columns (issue 13, item 4)", () => {
  it("recognises password, token and key headers, not words that merely contain them", () => {
    for (const h of ["Password", "passwd", "PWD", "pass", "User Password", "userPassword", "password_hash", "Passwort", "Secret", "client_secret", "Token", "Access Token", "api_key", "API Key", "X-Api-Key", "apiKey", "refresh_token", "Private Key"]) {
      expect([h, isSecretHeader(h)]).toEqual([h, true]);
    }
    for (const h of ["Email", "Passport Number", "Compass Score", "Day Pass", "Tokens Used", "Key Account", "Secretary", "Plan"]) {
      expect([h, isSecretHeader(h)]).toEqual([h, false]);
    }
  });

  it("suggests ignore for them in contacts and events imports, password in members imports", () => {
    const headers = ["Email", "Password", "api_key", "Access Token", "Plan"];
    expect(suggestMapping(headers, "contacts")).toEqual({ Email: "email", Password: "ignore", api_key: "ignore", "Access Token": "ignore", Plan: "attribute:plan" });
    expect(suggestMapping(["Email", "Event", "secret"], "events")).toEqual({ Email: "email", Event: "event", secret: "ignore" });
    expect(suggestMapping(["Email", "passwd", "Token"], "members")).toEqual({ Email: "email", passwd: "password", Token: "ignore" });
    expect(suggestMapping(["email", "attribute:password", "attributes.api_key"], "contacts")).toEqual({ email: "email", "attribute:password": "ignore", "attributes.api_key": "ignore" });
  });

  it("refuses an explicit attribute or property mapping of one with secret_column, by header or by key", () => {
    const err = mappingError(contacts({ headers: ["Email", "Password", "Notes"], mapping: { Email: "email", Password: "attribute:pw_copy", Notes: "attribute:api_key" } }));
    expect(err.code).toBe("secret_column");
    expect(err.message).toContain("kind=members");
    const problems = (err.details as { problems: { field: string; code?: string; reason: string }[] }).problems;
    expect(problems.map((p) => [p.field, p.code])).toEqual([
      ["mapping.Password", "secret_column"],
      ["mapping.Notes", "secret_column"],
    ]);
    expect(problems[0]?.reason).toContain("kind=members");
    const events = mappingError({ kind: "events", headers: ["email", "event", "token"], identifier: "email", mapping: { email: "email", event: "event", token: "property:token" }, options: {} });
    expect(events.code).toBe("secret_column");
    // Ignoring it is always fine.
    expect(validateMapping(contacts({ headers: ["Email", "Password"], mapping: { Email: "email", Password: "ignore" } })).mapping).toEqual({ Email: "email", Password: "ignore" });
  });
});

describe("partial mappings merge with the suggestion (issue 13, item 8)", () => {
  const headers = ["Email", "First Name", "Last Name", "Plan"];
  const suggested = suggestMapping(headers, "contacts");

  it("keeps the targets of columns the request does not name", () => {
    expect(mergeMapping(headers, suggested, { Email: "email", Plan: "attribute:plan" })).toEqual({
      Email: "email",
      "First Name": "first_name",
      "Last Name": "last_name",
      Plan: "attribute:plan",
    });
  });

  it("lets a named column take a target away from an unnamed one, which becomes ignore", () => {
    expect(mergeMapping(headers, suggested, { Plan: "First_Name", "Last Name": "ignore" })).toEqual({
      Email: "email",
      "First Name": "ignore",
      "Last Name": "ignore",
      Plan: "First_Name",
    });
  });

  it("passes unknown columns through so validation names them", () => {
    expect(mergeMapping(["Email"], { Email: "email" }, { Phone: "attribute:phone" })).toEqual({ Email: "email", Phone: "attribute:phone" });
  });
});

describe("headers in Roster's own syntax and common exports (issue 13, item 8)", () => {
  it("maps target-syntax headers to themselves", () => {
    expect(suggestMapping(["email", "attribute:plan", "labels", "label_ids", "segment", "segment_value", "external_id"], "contacts")).toEqual({
      email: "email",
      "attribute:plan": "attribute:plan",
      labels: "labels",
      label_ids: "label_ids",
      segment: "segment",
      segment_value: "segment_value",
      external_id: "external_id",
    });
    expect(suggestMapping(["email", "event", "property:plan"], "events")).toEqual({ email: "email", event: "event", "property:plan": "property:plan" });
    // Not a target of the kind: as any other header.
    expect(suggestMapping(["email", "property:plan"], "contacts")).toEqual({ email: "email", "property:plan": "attribute:property_plan" });
  });

  it("maps Mailchimp's audience export", () => {
    const headers = "Email Address,First Name,Last Name,Address,Phone Number,Birthday,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS".split(",");
    const m = suggestMapping(headers, "contacts");
    expect(m).toMatchObject({ "Email Address": "email", "First Name": "first_name", "Last Name": "last_name", TAGS: "labels", MEMBER_RATING: "attribute:member_rating", EUID: "attribute:euid" });
    expect(Object.values(m)).not.toContain("ignore");
  });

  it("maps Google Contacts' export, old and new", () => {
    const old = "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,Gender,Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,Notes,Language,Photo,Group Membership,E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,E-mail 2 - Value,Phone 1 - Type,Phone 1 - Value,Organization 1 - Type,Organization 1 - Name,Organization 1 - Title".split(",");
    expect(suggestMapping(old, "contacts")).toMatchObject({
      Name: "name",
      "Given Name": "first_name",
      "Family Name": "last_name",
      "E-mail 1 - Value": "email",
      "E-mail 2 - Value": "attribute:e_mail_2_value",
      "E-mail 1 - Type": "attribute:e_mail_1_type",
    });
    const current = "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value".split(",");
    expect(suggestMapping(current, "contacts")).toMatchObject({ "First Name": "first_name", "Last Name": "last_name", "E-mail 1 - Value": "email", Labels: "labels" });
  });

  it("maps HubSpot's contacts export", () => {
    const headers = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Contact owner", "Primary Associated Company ID", "Last Activity Date", "Lead Status", "Marketing contact status", "Create Date"];
    expect(suggestMapping(headers, "contacts")).toMatchObject({
      "Record ID": "external_id",
      "First Name": "first_name",
      "Last Name": "last_name",
      Email: "email",
      "Primary Associated Company ID": "company_id",
      "Lead Status": "attribute:lead_status",
    });
  });

  it("maps German headers", () => {
    expect(suggestMapping(["Vorname", "Nachname", "E-Mail-Adresse", "Firma", "Benutzername"], "contacts")).toEqual({
      Vorname: "first_name",
      Nachname: "last_name",
      "E-Mail-Adresse": "email",
      Firma: "attribute:firma",
      Benutzername: "username",
    });
    expect(suggestMapping(["E-Mail", "Passwort"], "members")).toEqual({ "E-Mail": "email", Passwort: "password" });
  });
});

describe("labels cells", () => {
  it("reads Mailchimp's quoted comma list as several labels, anything else as a ':' list", () => {
    expect(splitLabels('"Newsletter", "VIP"')).toEqual(["Newsletter", "VIP"]);
    expect(splitLabels('"Newsletter","VIP"')).toEqual(["Newsletter", "VIP"]);
    expect(splitLabels('"VIP"')).toEqual(["VIP"]);
    expect(splitLabels("Marketing:Trial:Demo")).toEqual(["Marketing", "Trial", "Demo"]);
    expect(splitLabels("Rock, Paper")).toEqual(["Rock, Paper"]);
    expect(splitLabels('"half, quoted')).toEqual(['"half, quoted']);
  });
});
