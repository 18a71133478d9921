/**
 * OWASP CSV injection: a cell a spreadsheet would read as a formula (= + - @ tab CR LF, and NUL) gets a leading
 * apostrophe, except plain numbers such as -12.5 or +3, which stay intact.
 *
 * The rule is reversible so that an exported CSV imports back unchanged (restoreCell, applied by the import reader):
 * a value that already starts with apostrophes followed by a formula character ("'=x") gets one more apostrophe too,
 * so stripping exactly one apostrophe from any cell matching ^'+[formula char] gives back the original in every case.
 */
const FORMULA_START = /^'*[=+\-@\t\r\n\0]/;
const ESCAPED_FORMULA = /^'+[=+\-@\t\r\n\0]/;
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function neutraliseCell(v: string): string {
  return FORMULA_START.test(v) && !PLAIN_NUMBER.test(v) ? `'${v}` : v;
}

/** The inverse of neutraliseCell: removes the one apostrophe it added. */
export function restoreCell(v: string): string {
  // (Most cells do not start with an apostrophe: one character compare spares them the regular expression.)
  return v.charCodeAt(0) === 39 && ESCAPED_FORMULA.test(v) ? v.slice(1) : v;
}

/**
 * The same rule as SQL over a text expression, for exports Postgres formats itself (COPY … TO STDOUT).
 * `expr` appears four times: pass a plain column reference, not a subquery. The first test (the first character is an
 * apostrophe or a formula character, one integer comparison) spares almost every cell the two regular expressions.
 */
export function neutraliseSql(expr: string): string {
  return `(case when ascii(${expr}) in (39, 61, 43, 45, 64, 9, 13, 10) and ${expr} ~ '^''*[=+\\-@\\t\\r\\n]' and ${expr} !~ '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$' then '''' || ${expr} else ${expr} end)`;
}
