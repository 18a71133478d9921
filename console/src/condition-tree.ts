/**
 * The condition builder's own tree and its two translations: toConditions() makes the API's condition JSON (API.md
 * "Conditions"), fromConditions() reads a saved segment's conditions back so it can be edited. Anything the builder
 * has no control for (a condition written through the API by hand) becomes a "json" rule that keeps it as written.
 */
import type { paths } from "./api.gen.js";

/** The condition JSON the API takes (the .js path: this module is also compiled with the server's settings, by its unit test). */
export type Conditions = NonNullable<paths["/v1/segments/preview"]["post"]["requestBody"]["content"]["application/json"]["conditions"]>;

export type Node = Group | Rule;
export interface Group {
  type: "group";
  match: "all" | "any";
  negate: boolean;
  children: Node[];
}
/** How an attribute's value is sent: "5" and 5 are different values to the API. */
export type ValueType = "text" | "number" | "boolean";
export interface ValueRule {
  op: string;
  value: string;
  /** The upper bound of `between`. */
  value2: string;
  unit: string;
  valueType: ValueType;
}
export type FieldRule = ({ type: "field"; field: string } & ValueRule) | ({ type: "attribute"; key: string } & ValueRule);
export type Rule =
  | FieldRule
  | { type: "label"; label: string; op: "has" | "has_not" }
  | { type: "event"; event: string; op: "performed" | "not_performed"; countOp: string; count: string; within: string; withinUnit: string }
  | { type: "segment"; segment: string; op: "in" | "not_in" }
  | { type: "json"; json: string };

export const TEXT_FIELDS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id"];
export const DATE_FIELDS = ["created_at", "updated_at", "last_seen_at"];
export const FIELDS = [...TEXT_FIELDS, ...DATE_FIELDS];
export const UNITS = ["minute", "hour", "day", "week", "month"];
export const COUNT_OPS = ["gte", "gt", "eq", "neq", "lte", "lt"];

/** The operators the API allows for each kind of field (see valueSchemaFor in the API's conditions). */
const TEXT_OPS = ["eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "in", "not_in", "exists", "not_exists"];
const DATE_OPS = ["before", "after", "within_last", "more_than_ago", "between", "eq", "neq", "gt", "gte", "lt", "lte", "exists", "not_exists"];
const ATTRIBUTE_OPS = [...TEXT_OPS, "gt", "gte", "lt", "lte", "between", "before", "after", "within_last", "more_than_ago"];
export function opsFor(rule: Rule): string[] {
  if (rule.type === "field") return DATE_FIELDS.includes(rule.field) ? DATE_OPS : TEXT_OPS;
  if (rule.type === "attribute") return ATTRIBUTE_OPS;
  return [];
}
/** Operators whose value is typed (text, number or true/false): only attributes hold other than text. */
export const TYPED_OPS = ["eq", "neq", "in", "not_in"];
export const NO_VALUE_OPS = ["exists", "not_exists"];
export const RELATIVE_OPS = ["within_last", "more_than_ago"];
export const LIST_OPS = ["in", "not_in"];

const valueRule = (op: string): ValueRule => ({ op, value: "", value2: "", unit: "day", valueType: "text" });
export const NEW_RULE: Record<Exclude<Rule["type"], "json">, () => Rule> = {
  field: () => ({ type: "field", field: "email", ...valueRule("contains") }),
  attribute: () => ({ type: "attribute", key: "", ...valueRule("eq") }),
  label: () => ({ type: "label", label: "", op: "has" }),
  event: () => ({ type: "event", event: "", op: "performed", countOp: "gte", count: "", within: "", withinUnit: "day" }),
  segment: () => ({ type: "segment", segment: "", op: "in" }),
};

export const emptyGroup = (): Group => ({ type: "group", match: "all", negate: false, children: [] });

function typed(raw: string, type: ValueType): unknown {
  if (type === "number" && raw.trim() !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  if (type === "boolean" && (raw.trim() === "true" || raw.trim() === "false")) return raw.trim() === "true";
  return raw;
}
/** A bound of gt/lt/between: a number when it reads as one, else a date as typed. */
const comparable = (raw: string): unknown => (raw.trim() !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw);

function valueOf(r: ValueRule): unknown {
  if (NO_VALUE_OPS.includes(r.op)) return undefined;
  if (RELATIVE_OPS.includes(r.op)) return { amount: Number(r.value) || 0, unit: r.unit };
  if (LIST_OPS.includes(r.op))
    return r.value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((v) => typed(v, r.valueType));
  if (r.op === "between") return [comparable(r.value), comparable(r.value2)];
  if (["gt", "gte", "lt", "lte"].includes(r.op)) return comparable(r.value);
  if (TYPED_OPS.includes(r.op)) return typed(r.value, r.valueType);
  return r.value;
}

/** The API's condition JSON for a tree, or null when the tree has no condition yet (everyone matches). */
export function toConditions(node: Node): Conditions | null {
  switch (node.type) {
    case "group": {
      const kids = node.children.map(toConditions).filter((c) => c !== null);
      if (kids.length === 0) return null;
      const g = { [node.match]: kids };
      return node.negate ? { not: g } : g;
    }
    case "field":
    case "attribute": {
      const field = node.type === "field" ? node.field : `attributes.${node.key}`;
      const v = valueOf(node);
      return v === undefined ? { field, op: node.op } : { field, op: node.op, value: v };
    }
    case "label":
      return { label: node.label, op: node.op };
    case "event": {
      const c: Record<string, unknown> = { event: node.event, op: node.op };
      if (node.count.trim()) c.count = { op: node.countOp, value: Number(node.count) };
      if (node.within.trim()) c.within = { amount: Number(node.within), unit: node.withinUnit };
      return c;
    }
    case "segment":
      return { segment: node.segment, op: node.op };
    case "json":
      try {
        return JSON.parse(node.json) as Conditions;
      } catch {
        // Sent as text: the API answers with its own sentence about it, next to the builder.
        return node.json;
      }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const only = (o: Record<string, unknown>, keys: string[]) => Object.keys(o).every((k) => keys.includes(k));
const asJson = (c: unknown): Rule => ({ type: "json", json: JSON.stringify(c) });
const text = (v: unknown) => (typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : null);
const typeOf = (v: unknown): ValueType => (typeof v === "number" ? "number" : typeof v === "boolean" ? "boolean" : "text");

function fieldRule(c: Record<string, unknown>): FieldRule | null {
  const field = c.field;
  const op = c.op;
  if (typeof field !== "string" || typeof op !== "string" || !only(c, ["field", "op", "value"])) return null;
  const attribute = field.startsWith("attributes.") ? field.slice("attributes.".length) : null;
  const base = attribute !== null ? ({ type: "attribute", key: attribute } as const) : FIELDS.includes(field) ? ({ type: "field", field } as const) : null;
  if (!base) return null;
  const rule: FieldRule = { ...base, ...valueRule(op) };
  if (!opsFor(rule).includes(op)) return null;
  const v = c.value;
  if (NO_VALUE_OPS.includes(op)) return v === undefined ? rule : null;
  if (RELATIVE_OPS.includes(op)) {
    if (!isObject(v) || typeof v.amount !== "number" || typeof v.unit !== "string" || !only(v, ["amount", "unit"])) return null;
    return { ...rule, value: String(v.amount), unit: v.unit };
  }
  if (LIST_OPS.includes(op)) {
    if (!Array.isArray(v) || v.length === 0) return null;
    const types = new Set(v.map(typeOf));
    const items = v.map(text);
    // One type for the whole list, and no comma inside an item: otherwise the text box could not give it back.
    if (types.size !== 1 || items.some((s) => s === null || s.includes(","))) return null;
    return { ...rule, value: items.join(", "), valueType: [...types][0]! };
  }
  if (op === "between") {
    if (!Array.isArray(v) || v.length !== 2 || v.some((b) => typeof b !== "string" && typeof b !== "number")) return null;
    return { ...rule, value: String(v[0]), value2: String(v[1]) };
  }
  const s = text(v);
  if (s === null) return null;
  if (["gt", "gte", "lt", "lte"].includes(op)) return typeof v === "boolean" || (typeof v === "string" && comparable(v) !== v) ? null : { ...rule, value: s };
  if (TYPED_OPS.includes(op)) {
    const valueType = typeOf(v);
    // A text value that reads as a number is sent as text; a field is text whatever it holds.
    if (rule.type === "field" && valueType !== "text") return null;
    return { ...rule, value: s, valueType };
  }
  return typeof v === "string" ? { ...rule, value: s } : null;
}

/** The builder's tree for the API's condition JSON; null or undefined is an empty "all" group (everyone). */
export function fromConditions(c: unknown): Group {
  if (c === null || c === undefined) return emptyGroup();
  const node = readNode(c);
  return node.type === "group" ? node : { ...emptyGroup(), children: [node] };
}

function readNode(c: unknown): Node {
  if (!isObject(c)) return asJson(c);
  if (only(c, ["not"]) && isObject(c.not)) {
    const inner = readNode(c.not);
    // {not: {all|any: […]}} is a negated group; {not: rule} a negated group of one.
    if (inner.type === "group" && !inner.negate) return { ...inner, negate: true };
    return { type: "group", match: "all", negate: true, children: [inner] };
  }
  for (const match of ["all", "any"] as const) {
    if (only(c, [match]) && Array.isArray(c[match])) return { type: "group", match, negate: false, children: (c[match] as unknown[]).map(readNode) };
  }
  if ("field" in c) return fieldRule(c) ?? asJson(c);
  if (typeof c.label === "string" && (c.op === "has" || c.op === "has_not") && only(c, ["label", "op"])) return { type: "label", label: c.label, op: c.op };
  if (typeof c.segment === "string" && (c.op === "in" || c.op === "not_in") && only(c, ["segment", "op"])) return { type: "segment", segment: c.segment, op: c.op };
  if (typeof c.event === "string" && (c.op === "performed" || c.op === "not_performed") && only(c, ["event", "op", "count", "within"])) {
    const count = c.count;
    const within = c.within;
    const countOk = count === undefined || (isObject(count) && typeof count.op === "string" && COUNT_OPS.includes(count.op) && typeof count.value === "number" && only(count, ["op", "value"]));
    const withinOk = within === undefined || (isObject(within) && typeof within.amount === "number" && typeof within.unit === "string" && only(within, ["amount", "unit"]));
    if (countOk && withinOk) {
      return {
        type: "event",
        event: c.event,
        op: c.op,
        countOp: isObject(count) ? String(count.op) : "gte",
        count: isObject(count) ? String(count.value) : "",
        within: isObject(within) ? String(within.amount) : "",
        withinUnit: isObject(within) ? String(within.unit) : "day",
      };
    }
  }
  return asJson(c);
}

const join = (base: string, key: string | number) => (base === "" ? String(key) : `${base}.${key}`);

/**
 * Where each child of a group sits in toConditions()'s JSON, as the API writes paths in its problems ("all.0.field"):
 * `path` is the group's own path ("" for the root). An empty group is left out of the JSON: its path is null.
 */
export function childPaths(group: Group, path: string): (string | null)[] {
  const inner = group.negate ? join(join(path, "not"), group.match) : join(path, group.match);
  let index = 0;
  return group.children.map((c) => (toConditions(c) === null ? null : join(inner, index++)));
}

export interface Problem {
  path: string;
  reason: string;
}

/** The problems the API gives for a node at `path` (or inside a rule there); a group's own are exactly at its path. */
export function problemsAt(problems: Problem[], path: string | null, exact: boolean): Problem[] {
  if (path === null) return [];
  return problems.filter((p) => p.path === path || (!exact && p.path.startsWith(`${path}.`)));
}
