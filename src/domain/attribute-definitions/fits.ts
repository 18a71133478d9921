import type { AttributeType } from "../imports/mapping.js";
import { ISO_DATE_RE } from "../segments/dates.js";

/**
 * What "a stored value fits a declared type" means, in SQL over a JSONB value `v` (never NULL here: absent keys and
 * JSON null are not values). The same reading the import's coercion gives a cell and segment conditions give a value:
 * - number: a JSON number, or a string in plain decimal or exponent notation ("42", "-1.5", "1e3");
 * - boolean: a JSON boolean, or a string true/false/yes/no/1/0/y/n/t/f in any case (the import's set);
 * - date: a string in the ISO-8601 grammar of conditions (`2024-03-01`, `2024-03-01T10:00:00Z`) naming a real day;
 * - string: a string, number or boolean (their text form); objects and arrays never fit.
 */
export const NUMERIC_TEXT_RE = "^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]{1,3})?$";
export const BOOLEAN_TEXTS = ["true", "false", "yes", "no", "1", "0", "y", "n", "t", "f"] as const;
export const TRUE_TEXTS = ["true", "yes", "1", "y", "t"] as const;
const DATE_TEXT_RE = ISO_DATE_RE.source;
const quoted = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(", ");

/** A day-of-month check after the regex: only CASE guarantees the guard runs before the cast. */
export function isoDateTextSql(t: string): string {
  return `(case when ${t} ~ '${DATE_TEXT_RE}' then substr(${t}, 9, 2)::int <= extract(day from make_date(substr(${t}, 1, 4)::int, substr(${t}, 6, 2)::int, 1) + interval '1 month' - interval '1 day') else false end)`;
}

/** SQL text (no parameters: every piece is a constant of this file) of the predicate "v fits `type`". */
export function fitsSql(type: AttributeType, v: string): string {
  const t = `(${v} #>> '{}')`;
  switch (type) {
    case "string":
      return `(jsonb_typeof(${v}) in ('string', 'number', 'boolean'))`;
    case "number":
      return `(jsonb_typeof(${v}) = 'number' or (jsonb_typeof(${v}) = 'string' and ${t} ~ '${NUMERIC_TEXT_RE}'))`;
    case "boolean":
      return `(jsonb_typeof(${v}) = 'boolean' or (jsonb_typeof(${v}) = 'string' and lower(btrim(${t})) in (${quoted(BOOLEAN_TEXTS)})))`;
    case "date":
      return `(case when jsonb_typeof(${v}) = 'string' then ${isoDateTextSql(t)} else false end)`;
  }
}
