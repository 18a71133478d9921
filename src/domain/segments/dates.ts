/**
 * The ISO-8601 dates the condition language accepts in values, and the only stored text compile.ts will cast
 * to timestamptz (after a day-of-month check). One grammar for both, so what a condition may say and what a
 * stored value may match cannot drift apart. Written in the subset of regex syntax JS and PostgreSQL share.
 */
export const ISO_DATE_RE =
  /^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?)?$/;
