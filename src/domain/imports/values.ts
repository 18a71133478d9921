/** Parsers for typed cells: each returns the normalised value or null when the text is not of that type. */

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseNumber(raw: string): number | null {
  const t = raw.trim();
  if (!NUMBER.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

const TRUE = new Set(["true", "yes", "1", "y", "t"]);
const FALSE = new Set(["false", "no", "0", "n", "f"]);

export function parseBoolean(raw: string): boolean | null {
  const t = raw.trim().toLowerCase();
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  return null;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?\s*(Z|[+-]\d{2}:?\d{2})?)?$/i;
const SLASH_YMD = /^(\d{4})\/(\d{1,2})\/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;
const SLASH_MDY = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;
const DOT_DMY = /^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

/** Minutes `timeZone` is ahead of UTC at the instant `utcMs`. */
function zoneOffset(utcMs: number, timeZone: string): number {
  const parts = zoneFormat(timeZone).formatToParts(new Date(utcMs));
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(n("year"), n("month") - 1, n("day"), n("hour") % 24, n("minute"), n("second"));
  return Math.round((wall - Math.floor(utcMs / 1000) * 1000) / 60_000);
}

const formats = new Map<string, Intl.DateTimeFormat>();
function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
    formats.set(timeZone, f);
  }
  return f;
}

/**
 * The instant a wall-clock time in `timeZone` names. A time a DST change repeats is the earlier instant; a time it
 * skips moves forward by the gap (as Temporal's "compatible" disambiguation does).
 */
function zonedInstant(wall: number, timeZone: string): number {
  const DAY = 86_400_000;
  const before = zoneOffset(wall - DAY, timeZone);
  const after = zoneOffset(wall + DAY, timeZone);
  const valid = [before, after].filter((o) => zoneOffset(wall - o * 60_000, timeZone) === o).map((o) => wall - o * 60_000);
  return valid.length > 0 ? Math.min(...valid) : wall - before * 60_000;
}

/** `offsetMin` null: a wall-clock time in `timeZone`. */
function build(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0, offsetMin: number | null = 0, timeZone = "UTC"): Date | null {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  const wall = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const t = offsetMin === null ? (timeZone === "UTC" ? wall : zonedInstant(wall, timeZone)) : wall - offsetMin * 60_000;
  const date = new Date(t);
  // Reject dates JavaScript would roll over (31 February → 3 March).
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCDate() !== d || check.getUTCMonth() !== mo - 1) return null;
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Dates and times: ISO-8601 (`2024-03-01`, `2024-03-01T10:00:00Z`, `2024-03-01 10:00+02:00`), `YYYY/MM/DD`,
 * US `MM/DD/YYYY` and European `DD.MM.YYYY`, each with an optional `HH:MM[:SS]`, and Unix epoch seconds or
 * milliseconds. A time without an offset (and a date alone, read as its midnight) is in `timeZone`, UTC unless given.
 */
export function parseDate(raw: string, timeZone = "UTC"): Date | null {
  const t = raw.trim();
  let m = ISO.exec(t);
  if (m) {
    let offset: number | null = null;
    const z = m[8];
    if (z && z.toUpperCase() === "Z") offset = 0;
    if (z && z.toUpperCase() !== "Z") {
      const sign = z.startsWith("-") ? -1 : 1;
      const digits = z.slice(1).replace(":", "");
      offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)));
    }
    const ms = m[7] ? Math.round(Number(`0${m[7]}`) * 1000) : 0;
    return build(+m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), ms, offset, timeZone);
  }
  if ((m = SLASH_YMD.exec(t))) return build(+m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), 0, null, timeZone);
  if ((m = SLASH_MDY.exec(t))) return build(+m[3]!, +m[1]!, +m[2]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), 0, null, timeZone);
  if ((m = DOT_DMY.exec(t))) return build(+m[3]!, +m[2]!, +m[1]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), 0, null, timeZone);
  if (/^\d{10}$/.test(t)) return new Date(Number(t) * 1000);
  if (/^\d{13}$/.test(t)) return new Date(Number(t));
  return null;
}
