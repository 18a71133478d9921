import { z } from "zod";
import { ValidationError } from "../errors.js";
import { compileConditions } from "./compile.js";

/**
 * The segment condition language (API.md "Conditions"): groups all/any/not nested freely over field, label,
 * event and segment conditions. Untrusted JSON is parsed here into the `Condition` union; compile.ts turns a
 * parsed tree into one parameterised SQL predicate.
 *
 * Parsing is a hand-written walk rather than one big zod union so that every problem names its exact JSON
 * path ("all.0.op") and so that hostile nesting stops at MAX_DEPTH before any recursion can overflow.
 */

/** Deep trees are unreadable and slow to plan; ten levels is far beyond what a person builds in a UI. */
export const MAX_DEPTH = 10;
/** Total nodes (groups and conditions) in one tree: bounds the SQL size and planning time. */
export const MAX_NODES = 200;
/** Values in one in/not_in list. */
export const MAX_LIST_VALUES = 1000;
/** Longest string value or name accepted anywhere in a condition. */
export const MAX_STRING = 1000;
/** Problems reported at most, so a huge bad tree does not produce a huge error body. */
const MAX_PROBLEMS = 50;

export const NATIVE_TEXT_FIELDS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id"] as const;
export const NATIVE_DATE_FIELDS = ["created_at", "updated_at", "last_seen_at"] as const;
export type NativeTextField = (typeof NATIVE_TEXT_FIELDS)[number];
export type NativeDateField = (typeof NATIVE_DATE_FIELDS)[number];
export type FieldName = NativeTextField | NativeDateField | `attributes.${string}`;

export const FIELD_OPS = [
  "eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "exists", "not_exists",
  "gt", "gte", "lt", "lte", "between", "before", "after", "within_last", "more_than_ago",
] as const;
export type FieldOp = (typeof FIELD_OPS)[number];
export const RELATIVE_UNITS = ["minute", "hour", "day", "week", "month"] as const;
export type RelativeUnit = (typeof RELATIVE_UNITS)[number];
export const COUNT_OPS = ["eq", "neq", "gt", "gte", "lt", "lte"] as const;
export type CountOp = (typeof COUNT_OPS)[number];

export type Scalar = string | number | boolean;
export interface Relative {
  amount: number;
  unit: RelativeUnit;
}
/** A comparable value: a number, or a date (kept as a normalised ISO-8601 UTC string). */
export type Comparable = { kind: "number"; value: number } | { kind: "date"; value: string };

export type FieldCondition =
  | { field: FieldName; op: "eq" | "neq"; value: Scalar }
  | { field: FieldName; op: "in" | "not_in"; value: Scalar[] }
  | { field: FieldName; op: "contains" | "not_contains" | "starts_with" | "ends_with"; value: string }
  | { field: FieldName; op: "exists" | "not_exists" }
  | { field: FieldName; op: "gt" | "gte" | "lt" | "lte"; value: Comparable }
  | { field: FieldName; op: "between"; value: [Comparable, Comparable] }
  | { field: FieldName; op: "before" | "after"; value: Comparable & { kind: "date" } }
  | { field: FieldName; op: "within_last" | "more_than_ago"; value: Relative };
export interface LabelCondition {
  label: string;
  op: "has" | "has_not";
}
export interface EventCondition {
  event: string;
  op: "performed" | "not_performed";
  count?: { op: CountOp; value: number };
  within?: Relative;
}
export interface SegmentCondition {
  segment: string;
  op: "in" | "not_in";
}
export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | FieldCondition
  | LabelCondition
  | EventCondition
  | SegmentCondition;

export interface Problem {
  path: string;
  reason: string;
}

// ---- value schemas -------------------------------------------------------------------------------------------

/** ISO-8601 dates the language accepts (also the guard compile.ts applies before casting stored text). */
export const ISO_DATE_RE =
  /^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?)?$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Normalises an ISO date string to a UTC ISO string; a date-time without an offset is read as UTC. */
export function normaliseIsoDate(text: string): string | null {
  if (!ISO_DATE_RE.test(text)) return null;
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  if (Number(text.slice(8, 10)) > daysInMonth(year, month)) return null;
  const hasOffset = /(Z|[+-][0-9]{2}(:?[0-9]{2})?)$/.test(text.slice(10));
  const d = new Date(text.length === 10 ? `${text}T00:00:00Z` : hasOffset ? text.replace(" ", "T") : `${text.replace(" ", "T")}Z`);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

const name = z.string().min(1).max(MAX_STRING);
const finite = z.number().refine(Number.isFinite, "must be a finite number");
const scalar = z.union([z.string().max(MAX_STRING), finite, z.boolean()]);
const relativeSchema = z.object({ amount: z.number().int().min(1).max(100_000), unit: z.enum(RELATIVE_UNITS) }).strict();
const dateText = z.string().transform((s, ctx) => {
  const iso = normaliseIsoDate(s);
  if (!iso) {
    ctx.addIssue({ code: "custom", message: "must be an ISO-8601 date such as 2024-05-01 or 2024-05-01T12:00:00Z" });
    return z.NEVER;
  }
  return { kind: "date" as const, value: iso };
});
const comparable = z.union([finite.transform((n) => ({ kind: "number" as const, value: n })), dateText], {
  error: "must be a number or an ISO-8601 date",
});

const labelSchema = z.object({ label: name, op: z.enum(["has", "has_not"]) }).strict();
const eventSchema = z
  .object({
    event: name,
    op: z.enum(["performed", "not_performed"]),
    count: z.object({ op: z.enum(COUNT_OPS), value: z.number().int().min(0).max(1_000_000_000) }).strict().optional(),
    within: relativeSchema.optional(),
  })
  .strict();
const segmentSchema = z.object({ segment: z.string().uuid("must be a segment id"), op: z.enum(["in", "not_in"]) }).strict();
const fieldShape = z
  .object({
    field: z.string().max(MAX_STRING),
    op: z.enum(FIELD_OPS),
    value: z.unknown().optional(),
  })
  .strict();

type FieldKind = "text" | "date" | "attribute";

function fieldKind(field: string): FieldKind | null {
  if ((NATIVE_TEXT_FIELDS as readonly string[]).includes(field)) return "text";
  if ((NATIVE_DATE_FIELDS as readonly string[]).includes(field)) return "date";
  if (field.startsWith("attributes.") && field.length > "attributes.".length) return "attribute";
  return null;
}

/** Which value each operator takes, per kind of field; null: the operator does not apply to that kind. */
function valueSchemaFor(op: FieldOp, kind: FieldKind): z.ZodType | "none" | null {
  const text = z.string().max(MAX_STRING);
  const nonEmptyText = text.min(1);
  const list = (item: z.ZodType) => z.array(item).min(1).max(MAX_LIST_VALUES);
  switch (op) {
    case "eq":
    case "neq":
      return kind === "text" ? text : kind === "date" ? dateText : scalar;
    case "in":
    case "not_in":
      return kind === "text" ? list(text) : kind === "attribute" ? list(scalar) : null;
    case "contains":
    case "not_contains":
    case "starts_with":
    case "ends_with":
      return kind === "date" ? null : nonEmptyText;
    case "exists":
    case "not_exists":
      return "none";
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return kind === "text" ? null : kind === "date" ? dateText : comparable;
    case "between": {
      if (kind === "text") return null;
      const bound = kind === "date" ? dateText : comparable;
      return z
        .tuple([bound, bound])
        .refine(([a, b]) => (a as Comparable).kind === (b as Comparable).kind, "both bounds must be numbers or both dates");
    }
    case "before":
    case "after":
      return kind === "text" ? null : dateText;
    case "within_last":
    case "more_than_ago":
      return kind === "text" ? null : relativeSchema;
  }
}

// ---- the walk ------------------------------------------------------------------------------------------------

const KINDS = ["all", "any", "not", "field", "label", "event", "segment"] as const;

interface Walk {
  problems: Problem[];
  nodes: number;
}

function join(path: string, key: string | number): string {
  return path === "" ? String(key) : `${path}.${key}`;
}

function addZodProblems(walk: Walk, path: string, error: z.ZodError): void {
  for (const issue of error.issues) {
    const at = issue.path.reduce<string>((p, k) => join(p, String(k)), path);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) walk.problems.push({ path: join(at, key), reason: "is not a known key" });
    } else {
      walk.problems.push({ path: at, reason: issue.message });
    }
  }
}

function parseNode(input: unknown, path: string, depth: number, walk: Walk): Condition | null {
  if (walk.problems.length >= MAX_PROBLEMS) return null;
  if (++walk.nodes > MAX_NODES) {
    walk.problems.push({ path, reason: `the conditions hold more than ${MAX_NODES} nodes` });
    return null;
  }
  if (depth > MAX_DEPTH) {
    walk.problems.push({ path, reason: `groups are nested more than ${MAX_DEPTH} levels deep` });
    return null;
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    walk.problems.push({ path, reason: "must be an object: a group (all, any, not) or a field, label, event or segment condition" });
    return null;
  }
  const present = KINDS.filter((k) => Object.hasOwn(input, k));
  if (present.length !== 1) {
    const reason =
      present.length === 0
        ? "must have one of the keys all, any, not, field, label, event or segment"
        : `has more than one of the keys ${present.join(", ")}`;
    walk.problems.push({ path, reason });
    return null;
  }
  const kind = present[0]!;
  const obj = input as Record<string, unknown>;
  if (kind === "all" || kind === "any" || kind === "not") {
    const extra = Object.keys(obj).filter((k) => k !== kind);
    for (const k of extra) walk.problems.push({ path: join(path, k), reason: "is not a known key" });
    if (kind === "not") {
      const child = parseNode(obj.not, join(path, "not"), depth + 1, walk);
      return child && !extra.length ? { not: child } : null;
    }
    const items = obj[kind];
    if (!Array.isArray(items)) {
      walk.problems.push({ path: join(path, kind), reason: "must be an array of conditions" });
      return null;
    }
    if (items.length > MAX_NODES) {
      walk.problems.push({ path: join(path, kind), reason: `the conditions hold more than ${MAX_NODES} nodes` });
      return null;
    }
    const children = items.map((c, i) => parseNode(c, join(join(path, kind), i), depth + 1, walk));
    if (extra.length || children.some((c) => c === null)) return null;
    return kind === "all" ? { all: children as Condition[] } : { any: children as Condition[] };
  }
  if (kind === "label" || kind === "event" || kind === "segment") {
    const schema = kind === "label" ? labelSchema : kind === "event" ? eventSchema : segmentSchema;
    const res = schema.safeParse(input);
    if (!res.success) {
      addZodProblems(walk, path, res.error);
      return null;
    }
    return res.data as Condition;
  }
  return parseField(input, path, walk);
}

function parseField(input: object, path: string, walk: Walk): FieldCondition | null {
  const res = fieldShape.safeParse(input);
  if (!res.success) {
    addZodProblems(walk, path, res.error);
    return null;
  }
  const { field, op, value } = res.data;
  const kind = fieldKind(field);
  if (!kind) {
    walk.problems.push({ path: join(path, "field"), reason: `is not a known field: use a native field or attributes.<key>` });
    return null;
  }
  const schema = valueSchemaFor(op, kind);
  if (schema === null) {
    walk.problems.push({ path: join(path, "op"), reason: `does not apply to ${kind === "text" ? "text" : "date"} field ${field}` });
    return null;
  }
  if (schema === "none") {
    if (value !== undefined) {
      walk.problems.push({ path: join(path, "value"), reason: `must be absent for ${op}` });
      return null;
    }
    return { field: field as FieldName, op: op as "exists" | "not_exists" };
  }
  if (value === undefined) {
    walk.problems.push({ path: join(path, "value"), reason: `is required for ${op}` });
    return null;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    addZodProblems(walk, join(path, "value"), parsed.error);
    return null;
  }
  // eq/neq on a date field carry a Comparable; normalise the shape to the union's { value: Scalar } for them.
  let v = parsed.data;
  if ((op === "eq" || op === "neq") && kind === "date") v = (v as Comparable).value;
  return { field, op, value: v } as FieldCondition;
}

function walkConditions(input: unknown): { condition: Condition | null; problems: Problem[] } {
  const walk: Walk = { problems: [], nodes: 0 };
  const condition = parseNode(input, "", 1, walk);
  return { condition: walk.problems.length ? null : condition, problems: walk.problems };
}

/** Parses untrusted JSON; throws ValidationError("invalid_conditions", msg, { problems: [{ path, reason }] }). */
export function parseConditions(input: unknown): Condition {
  const { condition, problems } = walkConditions(input);
  if (!condition) {
    const first = problems[0];
    const where = first ? `${first.path || "conditions"}: ${first.reason}` : "unknown problem";
    throw new ValidationError("invalid_conditions", `The conditions are invalid (${where}).`, { problems });
  }
  return condition;
}

/** The same language as a zod schema, for request bodies (issue paths are relative to the conditions). */
export const conditionSchema: z.ZodType<Condition> = z
  .unknown()
  .transform((input, ctx) => {
    const { condition, problems } = walkConditions(input);
    if (!condition) {
      for (const p of problems) ctx.addIssue({ code: "custom", path: p.path === "" ? [] : p.path.split("."), message: p.reason });
      return z.NEVER;
    }
    return condition;
  })
  .meta({
    description:
      "A condition tree: {all:[…]}, {any:[…]}, {not:{…}}, {field, op, value}, {label, op}, {event, op, count?, within?} or {segment, op}.",
  }) as unknown as z.ZodType<Condition>;

/** Segment ids the tree refers to (segment conditions), for dependency ordering and cycle checks. */
export function referencedSegments(cond: Condition): string[] {
  const out = new Set<string>();
  const visit = (c: Condition): void => {
    if ("all" in c) c.all.forEach(visit);
    else if ("any" in c) c.any.forEach(visit);
    else if ("not" in c) visit(c.not);
    else if ("segment" in c) out.add(c.segment);
  };
  visit(cond);
  return [...out];
}

export { compileConditions };
