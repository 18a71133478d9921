import { TRUE_TEXTS, fitsSql } from "../attribute-definitions/fits.js";
/**
 * The columns an export can hold, and the SQL that produces each cell's text. Cells that can hold user text are
 * neutralised for spreadsheets by the query that wraps these expressions (see query.ts).
 */
import { TARGET_KEY_PATTERN } from "../imports/targets.js";

/** ISO-8601 UTC with milliseconds, as the API shows timestamps (COPY would otherwise write "2026-01-01 10:00:00+00"). */
export const isoSql = (expr: string) => `to_char(${expr} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export interface ColumnSql {
  /** The header written for this column. */
  header: string;
  /** A text expression over the aliases the query provides (`p` people, `e` events, `x` export_params, and joins). */
  expr: string;
  /** False for columns whose text can never start with a formula character (ids, timestamps, JSON objects). */
  neutralise: boolean;
  /** A join the expression needs (by name, added once). */
  join?: keyof typeof USER_JOINS;
}

/**
 * Per-person lists, aggregated once for the whole export and joined: a correlated subquery per person measured
 * 2.3x slower on 1M people. `scope` narrows the aggregate (to the workspace, and to export_people when filtered).
 */
export const USER_JOINS = {
  // ':'-joined, as an import's `labels` column reads them; sorted so the same person always exports the same text.
  // Aggregated from the person's label id array (`u`: the same people as `p`, filtered by the same scope).
  labels: (scope: (alias: string, personId?: string) => string) =>
    `left join (select u.id as person_id, string_agg(l.name, ':' order by l.name) as names from people u cross join unnest(u.label_ids) lid join labels l on l.id = lid where ${scope("u", "u.id")} group by u.id) lab on lab.person_id = p.id`,
  segments: (scope: (alias: string, personId?: string) => string) =>
    `left join (select m.person_id, string_agg(s.name, ':' order by s.name) as names from segment_memberships m join segments s on s.id = m.segment_id where ${scope("m")} group by m.person_id) seg on seg.person_id = p.id`,
} satisfies Record<string, (scope: (alias: string, personId?: string) => string) => string>;

export const USER_NATIVE_COLUMNS = [
  "id",
  "email",
  "external_id",
  "username",
  "first_name",
  "last_name",
  "name",
  "company_id",
  "created_at",
  "updated_at",
  "last_seen_at",
] as const;

/**
 * The default users export: the native fields a person can import, plus labels. Their headers are import targets,
 * so the import's suggested mapping maps every column back with no manual mapping (the round trip). Roster's own
 * `id` and the timestamps are not importable (an import would keep them as attributes) and are opt-in.
 */
export const DEFAULT_USER_COLUMNS = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels"] as const;

export const EVENT_COLUMNS = ["occurred_at", "event", "user_id", "external_id", "email", "properties"] as const;
export const DEFAULT_EVENT_COLUMNS = EVENT_COLUMNS;

const ATTRIBUTE_PREFIX = "attributes.";

const USER_SQL: Record<string, Omit<ColumnSql, "header">> = {
  id: { expr: "p.id::text", neutralise: false },
  email: { expr: "p.email", neutralise: true },
  external_id: { expr: "p.external_id", neutralise: true },
  username: { expr: "p.username", neutralise: true },
  first_name: { expr: "p.first_name", neutralise: true },
  last_name: { expr: "p.last_name", neutralise: true },
  name: { expr: "p.name", neutralise: true },
  company_id: { expr: "p.company_id", neutralise: true },
  created_at: { expr: isoSql("p.created_at"), neutralise: false },
  updated_at: { expr: isoSql("p.updated_at"), neutralise: false },
  last_seen_at: { expr: isoSql("p.last_seen_at"), neutralise: false },
  labels: { expr: "lab.names", neutralise: true, join: "labels" },
  segments: { expr: "seg.names", neutralise: true, join: "segments" },
};

const EVENT_SQL: Record<(typeof EVENT_COLUMNS)[number], Omit<ColumnSql, "header">> = {
  occurred_at: { expr: isoSql("e.occurred_at"), neutralise: false },
  event: { expr: "e.name", neutralise: true },
  user_id: { expr: "p.id::text", neutralise: false },
  external_id: { expr: "p.external_id", neutralise: true },
  email: { expr: "p.email", neutralise: true },
  properties: { expr: "e.properties::text", neutralise: false },
};

export interface ColumnProblem {
  field: string;
  reason: string;
}

/** The attribute key of an `attributes.<key>` column, or null when the column is not one. */
export function attributeColumnKey(column: string): string | null {
  return column.startsWith(ATTRIBUTE_PREFIX) ? column.slice(ATTRIBUTE_PREFIX.length) : null;
}

/** Why `column` is not a users export column, or null when it is. */
export function userColumnProblem(column: string): string | null {
  const key = attributeColumnKey(column);
  if (key !== null) {
    return TARGET_KEY_PATTERN.test(key) ? null : `"${column}" is not a valid attribute column: the key takes 1 to 64 letters, digits or underscores.`;
  }
  if (Object.hasOwn(USER_SQL, column)) return null;
  return `Unknown column "${column}": use ${USER_NATIVE_COLUMNS.join(", ")}, labels, segments or attributes.<key>.`;
}

export function eventColumnProblem(column: string): string | null {
  return (EVENT_COLUMNS as readonly string[]).includes(column) ? null : `Unknown column "${column}": use ${EVENT_COLUMNS.join(", ")}.`;
}

/**
 * The n-th attribute column's cell, formatted by the key's declared type (`x.attr_types[n]`, null when undeclared):
 * dates that fit as ISO-8601 UTC with milliseconds (`2024-03-15T00:00:00.000Z`), numbers in their shortest decimal
 * form (`1.50` and `"1.5"` → `1.5`, `1e3` → `1000`), booleans as `true`/`false` (`"yes"` → `true`). A value that does
 * not fit the type, and every value of an undeclared or string key, is written as stored.
 */
function attributeCellSql(n: number): string {
  const v = `(p.attributes -> x.attr_keys[${n}])`;
  const t = `(p.attributes ->> x.attr_keys[${n}])`;
  const isString = `jsonb_typeof(${v}) = 'string'`;
  return `(case x.attr_types[${n}]
    when 'number' then case when ${fitsSql("number", v)} then trim_scale(btrim(${t})::numeric)::text else ${t} end
    when 'boolean' then case when jsonb_typeof(${v}) = 'boolean' then ${t}
      when ${isString} and lower(btrim(${t})) in (${TRUE_TEXTS.map((x) => `'${x}'`).join(", ")}) then 'true'
      when ${fitsSql("boolean", v)} then 'false' else ${t} end
    when 'date' then case when ${fitsSql("date", v)} then to_char(${t}::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') else ${t} end
    else ${t} end)`;
}

/**
 * SQL for the chosen users columns. Attribute keys are not written into the SQL text: the n-th attribute column
 * reads `x.attr_keys[n]` from the export_params temp table, which holds them as a bound parameter.
 */
export function userColumnsSql(columns: readonly string[]): { columns: ColumnSql[]; attributeKeys: string[] } {
  const attributeKeys: string[] = [];
  const out = columns.map((column): ColumnSql => {
    const key = attributeColumnKey(column);
    if (key !== null) {
      attributeKeys.push(key);
      return { header: column, expr: attributeCellSql(attributeKeys.length), neutralise: true };
    }
    const known = USER_SQL[column];
    if (!known) throw new Error(`Unchecked users export column ${column}`);
    return { header: column, ...known };
  });
  return { columns: out, attributeKeys };
}

export function eventColumnsSql(columns: readonly string[]): ColumnSql[] {
  return columns.map((column) => {
    const known = EVENT_SQL[column as (typeof EVENT_COLUMNS)[number]];
    if (!known) throw new Error(`Unchecked events export column ${column}`);
    return { header: column, ...known };
  });
}
