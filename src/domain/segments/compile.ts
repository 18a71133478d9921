import { sql, type SQL } from "drizzle-orm";
import { emailKey } from "../people/email.js";
import { parseBoolean, parseNumber } from "../imports/values.js";
import { ISO_DATE_RE } from "./dates.js";
import type { Comparable, Condition, CountOp, EventCondition, FieldCondition, NativeTextField, Relative, Scalar } from "./conditions.js";

/**
 * Compiles a parsed condition tree into one boolean SQL predicate over `people p`.
 *
 * Every user value and attribute key is a bound parameter; only fixed fragments chosen from closed enums
 * (column names, comparison operators, interval units) are SQL text. Every predicate is two-valued (never
 * NULL), so `not` and the negative operators are exact complements of their positive forms: a person without
 * an email matches `email neq x` and `email not_contains y`.
 *
 * Semantics worth knowing:
 * - Text: eq/in are exact, except on email, which compares keys (emailKey(): case, NFC and IDN-insensitive, as
 *   emails are everywhere in Roster; the condition value's key is computed here, the person's is stored);
 *   contains, starts_with and ends_with ignore case.
 * - Attributes (JSONB) compare by the type of the condition's value: a number compares numerically with JSON
 *   numbers and numeric strings ("42"); a date compares with strings holding an ISO-8601 date; a string or a
 *   boolean compares with the attribute's text form. A stored value of another type simply does not match:
 *   every cast is behind a guard (jsonb_typeof, a regex, a day-of-month check), so no row can raise an error.
 *   A key with a declared type (attribute_definitions) compares eq/neq/in/not_in as that type instead, whatever
 *   the JSON type of the condition's value (see typedEquals); ordering operators already take a number or a date.
 * - Relative dates (within_last, more_than_ago, event `within`) are evaluated at ctx.now.
 * - Events: `performed` means at least once (in the window), and the count condition when given;
 *   `not_performed` is its exact negation.
 */

export interface CompileContext {
  workspaceId: string;
  now: Date;
}

const TEXT_COLUMNS: Record<NativeTextField, string> = {
  email: "p.email",
  external_id: "p.external_id",
  username: "p.username",
  first_name: "p.first_name",
  last_name: "p.last_name",
  name: "p.name",
  company_id: "p.company_id",
};
const DATE_COLUMNS: Record<string, string> = {
  created_at: "p.created_at",
  updated_at: "p.updated_at",
  last_seen_at: "p.last_seen_at",
};
const COMPARE: Record<"gt" | "gte" | "lt" | "lte" | CountOp, string> = { eq: "=", neq: "<>", gt: ">", gte: ">=", lt: "<", lte: "<=" };
const UNIT_INTERVAL: Record<Relative["unit"], string> = {
  minute: "interval '1 minute'",
  hour: "interval '1 hour'",
  day: "interval '1 day'",
  week: "interval '1 week'",
  month: "interval '1 month'",
};
/** Stored text that may be cast to numeric (exponent bounded so the cast cannot overflow). */
const NUMERIC_TEXT_RE = "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$";
/** Stored text that may be cast to timestamptz: the grammar condition values use (see dates.ts). */
const DATE_TEXT_RE = ISO_DATE_RE.source;

const TRUE = sql`true`;
const FALSE = sql`false`;

function raw(text: string): SQL {
  return sql.raw(text);
}
const txt = (v: string): SQL => sql`${v}::text`;
/**
 * An in/not_in list as ONE bound text[] parameter: 200 lists of 1,000 values stay 200 parameters (PostgreSQL takes at
 * most 65,535), and drizzle's query builder, which spreads a fragment's parameters onto the call stack, cannot overflow.
 */
const txtList = (values: string[]): SQL => sql`${sql.param(values)}::text[]`;
const num = (v: number): SQL => sql`${String(v)}::numeric`;
const tstz = (iso: string): SQL => sql`${iso}::timestamptz`;

/** Makes a predicate two-valued: NULL (unknown) counts as no match. */
const definitely = (pred: SQL): SQL => sql`coalesce((${pred}), false)`;
const not = (pred: SQL): SQL => sql`(not ${definitely(pred)})`;

function cutoff(rel: Relative, now: Date): SQL {
  return sql`(${tstz(now.toISOString())} - ${rel.amount}::int * ${raw(UNIT_INTERVAL[rel.unit])})`;
}

// ---- attribute value views (each NULL when the stored value is not of that type) -----------------------------

/** An attribute as stored: `a.json` is the JSONB value (NULL when absent), `a.text` its text (`->>`, NULL for JSON null). */
interface Attr {
  json: SQL;
  text: SQL;
}
function attr(key: string): Attr {
  return { json: sql`(p.attributes -> ${txt(key)})`, text: sql`(p.attributes ->> ${txt(key)})` };
}
/** The text of a string, number or boolean; NULL for objects and arrays (whose `->>` is their JSON text). */
function attrText(a: Attr): SQL {
  return sql`(case when jsonb_typeof(${a.json}) in ('string', 'number', 'boolean') then ${a.text} end)`;
}
/**
 * A view equal to attrText wherever it is compared with one of `values` for equality, but cheaper: the JSON text
 * of an object or array always starts with '{' or '[', so unless a value does, `->>` alone cannot match one.
 */
function attrTextFor(a: Attr, values: string[]): SQL {
  return values.some((v) => v.startsWith("{") || v.startsWith("[")) ? attrText(a) : a.text;
}
function attrNumber(a: Attr): SQL {
  return sql`(case jsonb_typeof(${a.json}) when 'number' then (${a.json})::numeric
    when 'string' then case when ${a.text} ~ ${NUMERIC_TEXT_RE} then (${a.text})::numeric end end)`;
}
/** Nested CASEs, because only CASE guarantees the cast runs after its guard (AND may be reordered). */
function attrDate(a: Attr): SQL {
  const t = a.text;
  return sql`(case when jsonb_typeof(${a.json}) = 'string' then case when ${t} ~ ${DATE_TEXT_RE} then
    case when substr(${t}, 9, 2)::int <= extract(day from make_date(substr(${t}, 1, 4)::int, substr(${t}, 6, 2)::int, 1) + interval '1 month' - interval '1 day')
    then ${t}::timestamptz end end end)`;
}

// ---- field conditions ----------------------------------------------------------------------------------------

function comparableView(field: string, kind: Comparable["kind"]): SQL {
  if (field in DATE_COLUMNS) return raw(DATE_COLUMNS[field]!);
  const a = attr(field.slice("attributes.".length));
  return kind === "number" ? attrNumber(a) : attrDate(a);
}
const comparableValue = (c: Comparable): SQL => (c.kind === "number" ? num(c.value) : tstz(c.value));

// ---- declared attribute types (PUT /v1/attributes/:key) ---------------------------------------------------------

/**
 * The key's declared type, read by the statement itself (an uncorrelated subquery, evaluated once), so every caller
 * compiles the same predicate and a type change applies from the next statement on.
 */
function declaredType(key: string, ctx: CompileContext): SQL {
  return sql`(select d.type from attribute_definitions d where d.workspace_id = ${ctx.workspaceId}::uuid and d.key = ${txt(key)})`;
}
/** JSON booleans, and strings the import reads as booleans (true/yes/1/y/t, false/no/0/n/f in any case). */
function attrBoolean(a: Attr): SQL {
  return sql`(case jsonb_typeof(${a.json}) when 'boolean' then (${a.json})::boolean
    when 'string' then case when lower(btrim(${a.text})) in ('true', 'yes', '1', 'y', 't') then true
      when lower(btrim(${a.text})) in ('false', 'no', '0', 'n', 'f') then false end end)`;
}
const asNumber = (v: Scalar): number | null => (typeof v === "number" ? v : typeof v === "string" ? parseNumber(v) : null);
const asBoolean = (v: Scalar): boolean | null => (typeof v === "boolean" ? v : typeof v === "string" ? parseBoolean(v) : null);
const asDate = (v: Scalar): string | null => (typeof v === "string" && ISO_DATE_RE.test(v.trim()) ? v.trim() : null);
const present = <T>(xs: (T | null)[]): T[] => xs.filter((x): x is T => x !== null);

/**
 * Equality with any of `values` as the key's declared type reads them: a number-typed key compares numerically
 * (the condition value "10" is the number 10), a boolean-typed key compares truth ("yes" is true), a date-typed key
 * compares instants, a string-typed key compares text ("10" and 10 are both "10"). A value that is not of the
 * declared type matches nobody. An undeclared key compares by the value's own type, as before (`untyped`).
 */
function typedEquals(a: Attr, key: string, values: Scalar[], ctx: CompileContext, untyped: SQL): SQL {
  const numbers = present(values.map(asNumber));
  const booleans = present(values.map(asBoolean));
  const dates = present(values.map(asDate));
  const strings = values.map(String);
  const byNumber = numbers.length ? sql`${attrNumber(a)} = any(${txtList(numbers.map(String))}::numeric[])` : FALSE;
  const byBoolean = booleans.length ? sql`${attrBoolean(a)} = any(${txtList(booleans.map(String))}::boolean[])` : FALSE;
  const byDate = dates.length ? sql`${attrDate(a)} = any(${txtList(dates)}::timestamptz[])` : FALSE;
  const byString = sql`${attrTextFor(a, strings)} = any(${txtList(strings)})`;
  return sql`(case ${declaredType(key, ctx)} when 'number' then ${byNumber} when 'boolean' then ${byBoolean}
    when 'date' then ${byDate} when 'string' then ${byString} else ${untyped} end)`;
}

function scalarEquals(a: Attr, v: Scalar): SQL {
  if (typeof v === "number") return sql`${attrNumber(a)} = ${num(v)}`;
  if (typeof v === "boolean") return sql`lower(${attrTextFor(a, [String(v)])}) = ${txt(String(v))}`;
  return sql`${attrTextFor(a, [v])} = ${txt(v)}`;
}

function textPattern(col: SQL, op: "contains" | "starts_with" | "ends_with", v: string): SQL {
  const value = txt(v);
  if (op === "contains") return sql`strpos(lower(${col}), lower(${value})) > 0`;
  if (op === "starts_with") return sql`starts_with(lower(${col}), lower(${value}))`;
  return sql`right(lower(${col}), length(${value})) = lower(${value})`;
}

function compileField(c: FieldCondition, ctx: CompileContext): SQL {
  const field = c.field;
  const isAttr = field.startsWith("attributes.");
  const key = isAttr ? field.slice("attributes.".length) : "";
  const a = isAttr ? attr(key) : null;
  const textCol = a ? attrText(a) : field in TEXT_COLUMNS ? raw(TEXT_COLUMNS[field as NativeTextField]) : null;
  const isEmail = field === "email";
  const eqText = (v: string): SQL => (isEmail ? sql`p.email_key = ${txt(emailKey(v))}` : sql`${textCol} = ${txt(v)}`);

  switch (c.op) {
    case "exists":
    case "not_exists": {
      const present = a ? sql`coalesce(jsonb_typeof(${a.json}), 'null') <> 'null'` : sql`${raw(TEXT_COLUMNS[field as NativeTextField] ?? DATE_COLUMNS[field]!)} is not null`;
      return c.op === "exists" ? definitely(present) : not(present);
    }
    case "eq":
    case "neq": {
      let pred: SQL;
      if (a) pred = typedEquals(a, key, [c.value], ctx, scalarEquals(a, c.value));
      else if (field in DATE_COLUMNS) pred = sql`${raw(DATE_COLUMNS[field]!)} = ${tstz(String(c.value))}`;
      else pred = eqText(String(c.value));
      return c.op === "eq" ? definitely(pred) : not(pred);
    }
    case "in":
    case "not_in": {
      let pred: SQL;
      if (a) {
        // One list per value type, each against the view of that type (see scalarEquals).
        const strings = c.value.filter((v): v is string => typeof v === "string");
        const numbers = c.value.filter((v): v is number => typeof v === "number");
        const booleans = c.value.filter((v): v is boolean => typeof v === "boolean");
        const parts: SQL[] = [];
        if (strings.length) parts.push(sql`${attrTextFor(a, strings)} = any(${txtList(strings)})`);
        if (numbers.length) parts.push(sql`${attrNumber(a)} = any(${txtList(numbers.map(String))}::numeric[])`);
        if (booleans.length) parts.push(sql`lower(${attrTextFor(a, booleans.map(String))}) = any(${txtList(booleans.map(String))})`);
        pred = typedEquals(a, key, c.value, ctx, sql`(${sql.join(parts, sql` or `)})`);
      } else {
        const values = txtList(c.value.map((v) => (isEmail ? emailKey(String(v)) : String(v))));
        pred = sql`${isEmail ? sql`p.email_key` : textCol} = any(${values})`;
      }
      return c.op === "in" ? definitely(pred) : not(pred);
    }
    case "contains":
    case "not_contains":
    case "starts_with":
    case "ends_with": {
      const pred = textPattern(textCol!, c.op === "not_contains" ? "contains" : c.op, c.value);
      return c.op === "not_contains" ? not(pred) : definitely(pred);
    }
    case "gt":
    case "gte":
    case "lt":
    case "lte":
      return definitely(sql`${comparableView(field, c.value.kind)} ${raw(COMPARE[c.op])} ${comparableValue(c.value)}`);
    case "between": {
      const [lo, hi] = c.value;
      return definitely(sql`${comparableView(field, lo.kind)} between ${comparableValue(lo)} and ${comparableValue(hi)}`);
    }
    case "before":
    case "after":
      return definitely(sql`${comparableView(field, "date")} ${raw(c.op === "before" ? "<" : ">")} ${tstz(c.value.value)}`);
    case "within_last": {
      const view = comparableView(field, "date");
      return definitely(sql`${view} >= ${cutoff(c.value, ctx.now)} and ${view} <= ${tstz(ctx.now.toISOString())}`);
    }
    case "more_than_ago":
      return definitely(sql`${comparableView(field, "date")} < ${cutoff(c.value, ctx.now)}`);
  }
}

// ---- labels, events, segments --------------------------------------------------------------------------------

function compileEvent(c: EventCondition, ctx: CompileContext): SQL {
  const window = c.within
    ? sql` and e.occurred_at >= ${cutoff(c.within, ctx.now)} and e.occurred_at <= ${tstz(ctx.now.toISOString())}`
    : sql``;
  const scope = sql`e.person_id = p.id and e.workspace_id = ${ctx.workspaceId}::uuid and e.name = ${txt(c.event)}${window}`;
  let performed: SQL;
  if (!c.count) {
    performed = sql`exists (select 1 from events e where ${scope})`;
  } else {
    // Count only up to what the comparison needs to know, so a heavy user does not cost a full count.
    const enough = c.count.value + 1;
    performed = sql`(select count(*) >= 1 and count(*) ${raw(COMPARE[c.count.op])} ${c.count.value}::int
      from (select 1 from events e where ${scope} limit ${enough}::int) n)`;
  }
  return c.op === "performed" ? definitely(performed) : not(performed);
}

function compileNode(c: Condition, ctx: CompileContext): SQL {
  if ("all" in c) return c.all.length ? sql`(${sql.join(c.all.map((x) => compileNode(x, ctx)), sql` and `)})` : TRUE;
  if ("any" in c) return c.any.length ? sql`(${sql.join(c.any.map((x) => compileNode(x, ctx)), sql` or `)})` : FALSE;
  if ("not" in c) return not(compileNode(c.not, ctx));
  if ("label" in c) {
    // The person's label ids (GIN-indexed) contain the label's id; a name the workspace has no label for is id 0, which
    // no one has.
    const has = sql`p.label_ids @> array[coalesce((select l.id from labels l
      where l.workspace_id = ${ctx.workspaceId}::uuid and l.name = ${txt(c.label)}), 0)]::bigint[]`;
    return c.op === "has" ? has : sql`(not ${has})`;
  }
  if ("event" in c) return compileEvent(c, ctx);
  if ("segment" in c) {
    const member = sql`exists (select 1 from segment_memberships m
      where m.segment_id = ${c.segment}::uuid and m.person_id = p.id and m.workspace_id = ${ctx.workspaceId}::uuid)`;
    return c.op === "in" ? member : sql`(not ${member})`;
  }
  return compileField(c, ctx);
}

/**
 * A boolean SQL predicate over the people table aliased as `p`; every value and attribute key is a bound
 * parameter, never spliced into SQL text. Relative dates are evaluated at ctx.now.
 */
export function compileConditions(cond: Condition, ctx: CompileContext): SQL {
  return sql`(${compileNode(cond, ctx)})`;
}
