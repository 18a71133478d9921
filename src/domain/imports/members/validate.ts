import type { RowResult, ValuesRow } from "../handler.js";
import { MAX_FIELD_LENGTH, cellProblem, rowError, type RowError } from "../rows.js";
import { parseTarget, type MappingTarget } from "../targets.js";
import { emailKey, normaliseEmail } from "../../people/email.js";
import { parseBoolean } from "../values.js";
import { REDACTED } from "./redact.js";

/** PRODUCT.md: team-member passwords have at least 6 characters. */
export const MIN_PASSWORD_LENGTH = 6;
/** argon2 takes any length, but hashing megabytes per row is a denial of service, not a password. */
export const MAX_PASSWORD_LENGTH = 1_000;

/** Columns of the members staging table, in COPY order (after `row` and `key`); the password goes in only as a hash. */
export const MEMBER_TEXT_COLUMNS = ["email", "first_name", "last_name", "active", "role"] as const;
type TextColumn = (typeof MEMBER_TEXT_COLUMNS)[number];

export interface MemberRow extends ValuesRow {
  /** The password as the file holds it, until prepare() replaces it with `hash`; null when the cell is empty. */
  password: string | null;
  /** The cell read "[redacted]" (an error report uploaded again): no password, and a new member's row fails in the batch. */
  passwordRedacted: boolean;
  /** argon2id hash to store; null when the password does not change (empty cell, or it verifies against the stored hash). */
  hash: string | null;
}

interface Plan {
  index: number;
  header: string;
  column: TextColumn | "password";
}

/** Compiles the mapping once; the returned function validates one CSV record into a staged member. */
export function memberRowValidator(headers: string[], mapping: Record<string, MappingTarget>) {
  const plans: Plan[] = [];
  headers.forEach((header, index) => {
    const type = parseTarget(mapping[header] ?? "ignore").type;
    if (type === "password" || (MEMBER_TEXT_COLUMNS as readonly string[]).includes(type)) plans.push({ index, header, column: type as Plan["column"] });
  });
  const emailHeader = plans.find((p) => p.column === "email")?.header ?? "email";
  const hasPassword = plans.some((p) => p.column === "password");
  const slot = new Map(MEMBER_TEXT_COLUMNS.map((c, i) => [c, i]));

  return function validate(record: string[], row: number, raw: string): RowResult<MemberRow> {
    if (record.length !== headers.length) {
      // The raw line holds the password somewhere: with ragged fields there is no telling where, so none of it is repeated.
      const value = hasPassword ? REDACTED : raw.replace(/\r?\n$|\r$/, "");
      const n = record.length;
      return { ok: false, errors: [rowError(row, null, value, "ragged_row", `The row has ${n} field${n === 1 ? "" : "s"} but the header has ${headers.length}.`)] };
    }
    const errors: RowError[] = [];
    const values: (string | null)[] = new Array(MEMBER_TEXT_COLUMNS.length).fill(null);
    let password: string | null = null;
    let passwordRedacted = false;

    for (const p of plans) {
      const cell = record[p.index] ?? "";
      if (p.column === "password") {
        // Taken as typed: spaces may be part of a password. An empty cell leaves the stored password as it is.
        if (cell === "") continue;
        // What error reports and samples show instead of a password is never one: it means "the password I sent before".
        if (cell.trim() === REDACTED) {
          passwordRedacted = true;
          continue;
        }
        const chars = Array.from(cell).length;
        if (cell.includes("\u0000")) errors.push(rowError(row, p.header, REDACTED, "nul_byte", "The value contains a NUL byte."));
        else if (chars < MIN_PASSWORD_LENGTH) errors.push(rowError(row, p.header, REDACTED, "password_too_short", `A password needs at least ${MIN_PASSWORD_LENGTH} characters.`));
        else if (chars > MAX_PASSWORD_LENGTH) errors.push(rowError(row, p.header, REDACTED, "too_long", `A password may have at most ${MAX_PASSWORD_LENGTH} characters.`));
        else password = cell;
        continue;
      }
      const problem = cellProblem(row, p.header, cell, MAX_FIELD_LENGTH);
      if (problem) {
        errors.push(problem);
        continue;
      }
      const text = cell.trim();
      // An empty cell leaves the stored value as it is.
      if (text === "") continue;
      if (p.column === "email") {
        const email = normaliseEmail(text);
        if (!email) errors.push(rowError(row, p.header, cell, "invalid_email", `"${text}" is not a valid email address.`));
        else values[slot.get("email")!] = email;
        continue;
      }
      if (p.column === "active") {
        const active = parseBoolean(text);
        if (active === null) errors.push(rowError(row, p.header, cell, "invalid_boolean", `"${text}" is not true/false, 1/0 or yes/no.`));
        else values[slot.get("active")!] = String(active);
        continue;
      }
      values[slot.get(p.column)!] = text;
    }

    const email = values[slot.get("email")!];
    if (!email && !errors.some((e) => e.column === emailHeader)) {
      errors.push(rowError(row, emailHeader, "", "missing_identifier", "The email is empty: it identifies the team member."));
    }
    if (errors.length > 0 || !email) return { ok: false, errors };
    return { ok: true, staged: { row, key: emailKey(email), values, password, passwordRedacted, hash: null } };
  };
}
