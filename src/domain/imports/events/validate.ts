import type { RowResult, ValuesRow } from "../handler.js";
import { MAX_ATTRIBUTE_LENGTH, MAX_FIELD_LENGTH, cellProblem, raggedError, rowError, type RowError } from "../rows.js";
import { IDENTIFIERS, parseTarget, type Identifier, type MappingTarget } from "../targets.js";
import { emailKey, normaliseEmail } from "../../people/email.js";
import { parseDate } from "../values.js";

/** Event names are labels people pick in segment conditions, not prose. */
export const MAX_EVENT_NAME_LENGTH = 255;

/** Columns of the events staging table, in COPY order (after `row` and `key`). */
export const EVENT_STAGE_COLUMNS = ["email", "email_key", "external_id", "username", "event", "occurred_at", "properties"] as const;
type StageColumn = (typeof EVENT_STAGE_COLUMNS)[number];

interface Plan {
  index: number;
  header: string;
  column: Identifier | "event" | "occurred_at" | "property";
  propertyKey?: string;
}

/**
 * Compiles the mapping once; the returned function validates one CSV record into a staged event.
 * `occurred_at` cells without an offset are read in `timeZone` (the import's `timezone` option, UTC by default).
 */
export function eventRowValidator(headers: string[], mapping: Record<string, MappingTarget>, identifier: Identifier, timeZone: string) {
  const plans: Plan[] = [];
  headers.forEach((header, index) => {
    const target = parseTarget(mapping[header] ?? "ignore");
    if (target.type === "property") plans.push({ index, header, column: "property", propertyKey: target.key! });
    else if ((IDENTIFIERS as readonly string[]).includes(target.type) || target.type === "event" || target.type === "occurred_at") {
      plans.push({ index, header, column: target.type as Plan["column"] });
    }
  });
  const headerOf = (c: Plan["column"]) => plans.find((p) => p.column === c)?.header ?? c;
  const slot = new Map(EVENT_STAGE_COLUMNS.map((c, i) => [c, i]));

  return function validate(record: string[], row: number, raw: string): RowResult<ValuesRow> {
    if (record.length !== headers.length) return { ok: false, errors: [raggedError(row, record.length, headers.length, raw)] };
    const errors: RowError[] = [];
    const values: (string | null)[] = new Array(EVENT_STAGE_COLUMNS.length).fill(null);
    let properties: Record<string, string> | null = null;

    for (const p of plans) {
      const cell = record[p.index] ?? "";
      const problem = cellProblem(row, p.header, cell, p.column === "property" ? MAX_ATTRIBUTE_LENGTH : MAX_FIELD_LENGTH);
      if (problem) {
        errors.push(problem);
        continue;
      }
      const text = p.column === "property" ? cell : cell.trim();
      if (text.trim() === "") {
        if (p.column === "occurred_at") errors.push(rowError(row, p.header, "", "missing_occurred_at", "The time of the event is empty."));
        // An empty property is left out of the event's properties.
        continue;
      }
      switch (p.column) {
        case "property":
          // Kept as text, as the file has it: a property's type is not declared anywhere.
          (properties ??= {})[p.propertyKey!] = text;
          break;
        case "email": {
          const email = normaliseEmail(text);
          if (!email) errors.push(rowError(row, p.header, cell, "invalid_email", `"${text}" is not a valid email address.`));
          else {
            values[slot.get("email")!] = email;
            values[slot.get("email_key")!] = emailKey(email);
          }
          break;
        }
        case "event":
          if (text.length > MAX_EVENT_NAME_LENGTH) errors.push(rowError(row, p.header, cell, "too_long", `An event name may have at most ${MAX_EVENT_NAME_LENGTH} characters.`));
          else values[slot.get("event")!] = text;
          break;
        case "occurred_at": {
          const at = parseDate(text, timeZone);
          if (!at) errors.push(rowError(row, p.header, cell, "invalid_date", `"${text}" is not a date and time (use ISO-8601, e.g. 2024-03-01T10:00:00Z).`));
          else values[slot.get("occurred_at")!] = at.toISOString();
          break;
        }
        default:
          values[slot.get(p.column as StageColumn)!] = text;
      }
    }

    const keyValue = values[slot.get(identifier === "email" ? "email_key" : identifier)!];
    if (!keyValue && !errors.some((e) => e.column === headerOf(identifier))) {
      errors.push(rowError(row, headerOf(identifier), "", "missing_identifier", `The ${identifier} is empty: it identifies the person.`));
    }
    if (!values[slot.get("event")!] && !errors.some((e) => e.column === headerOf("event"))) {
      errors.push(rowError(row, headerOf("event"), "", "missing_event", "The event name is empty."));
    }
    if (errors.length > 0 || !keyValue) return { ok: false, errors };
    if (properties) values[slot.get("properties")!] = JSON.stringify(properties);
    return { ok: true, staged: { row, key: keyValue, values } satisfies ValuesRow };
  };
}
