/**
 * OWASP CSV injection: a cell a spreadsheet would read as a formula (= + - @ tab CR LF, and NUL) gets a leading
 * apostrophe, except plain numbers such as -12.5 or +3, which stay intact.
 */
const FORMULA_START = /^[=+\-@\t\r\n\0]/;
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function neutraliseCell(v: string): string {
  return FORMULA_START.test(v) && !PLAIN_NUMBER.test(v) ? `'${v}` : v;
}

/** The same rule as SQL over a text expression, for exports Postgres formats itself (COPY … TO STDOUT). */
export function neutraliseSql(expr: string): string {
  return `(case when ${expr} ~ '^[=+\\-@\\t\\r\\n]' and ${expr} !~ '^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$' then '''' || ${expr} else ${expr} end)`;
}
