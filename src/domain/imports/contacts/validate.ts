import type { RowResult, StagedRow } from "../handler.js";
import { copyValue } from "../copy.js";
import type { ImportOptions } from "../mapping.js";
import { parseTarget, type Identifier, type MappingTarget } from "../targets.js";
import { emailKey, normaliseEmail } from "../../people/email.js";
import { parseBoolean, parseDate, parseNumber } from "../values.js";
import {
  MAX_ATTRIBUTE_LENGTH,
  MAX_FIELD_LENGTH,
  MAX_LABEL_LENGTH,
  MAX_LABELS_PER_ROW,
  cellProblem,
  emptyRowError,
  isBlankRecord,
  raggedError,
  rowError,
  splitLabels,
  splitList,
  type RowError,
} from "../rows.js";

/** Columns of the contacts staging table, in COPY order (after `row` and `key`). */
export const CONTACT_STAGE_COLUMNS = [
  "email",
  "email_key",
  "external_id",
  "username",
  "first_name",
  "last_name",
  "name",
  "company_id",
  "attributes",
  "labels",
  "label_ids",
  "segment",
  "segment_value",
] as const;
type StageColumn = (typeof CONTACT_STAGE_COLUMNS)[number];
const NATIVE = new Set<string>(["email", "external_id", "username", "first_name", "last_name", "name", "company_id"]);

export type { RowResult } from "../handler.js";

/**
 * A contact row as a batch holds it until the batch is encoded (encodeContactRows): its staging columns already as
 * COPY text, so that what a batch of 10k rows keeps alive is a string a row, not an array of cells (a parse thread
 * spent ~40% of its time collecting those once they outlived its young generation).
 */
export interface ContactRow extends StagedRow {
  /** CONTACT_STAGE_COLUMNS as COPY text, tab-separated, without a line end. */
  cells: string;
  /** The labels cell and the label_ids cell as one key (NUL between them: a cell cannot hold one); null when both are empty. */
  labelCell: string | null;
  /**
   * What creating the person sets, comma-separated (attribute keys are letters, digits and underscores: no comma): every
   * non-empty field, then every attribute key in code point order (the order of `collate "C"`). Known here for free;
   * the database took ~6 µs a row to work it out. Rows of a file share a few of these: a batch sends each once.
   */
  setFields: string;
}

interface Plan {
  index: number;
  header: string;
  column: StageColumn | "attribute";
  attributeKey?: string;
  type?: "string" | "number" | "boolean" | "date";
}

/** Compiles the mapping once; the returned function validates one CSV record into a staging row. */
export function contactRowValidator(headers: string[], mapping: Record<string, MappingTarget>, identifier: Identifier, options: ImportOptions) {
  const plans: Plan[] = [];
  headers.forEach((header, index) => {
    const target = parseTarget(mapping[header] ?? "ignore");
    if (target.type === "ignore") return;
    if (target.type === "attribute") {
      plans.push({ index, header, column: "attribute", attributeKey: target.key!, type: (Object.hasOwn(options.attributeTypes, target.key!) ? options.attributeTypes[target.key!] : undefined) ?? "string" });
    } else if ((CONTACT_STAGE_COLUMNS as readonly string[]).includes(target.type)) {
      plans.push({ index, header, column: target.type as StageColumn });
    }
  });
  const identifierHeader = plans.find((p) => p.column === identifier)?.header ?? identifier;
  // The attribute keys the mapping can set, in code point order, each as it appears in set_fields: a row lists those it set.
  const attributeItems = [...new Set(plans.flatMap((p) => (p.attributeKey === undefined ? [] : [p.attributeKey])))]
    .sort(byCodePoint)
    .map((k) => [k, `attributes.${k}`] as const);
  const slot = new Map(CONTACT_STAGE_COLUMNS.map((c, i) => [c, i]));
  const mappedIndexes = plans.map((p) => p.index);

  const labelsSlot = slot.get("labels")!;
  const labelIdsSlot = slot.get("label_ids")!;
  // set_fields of a row, by the bit mask of what it sets: a file repeats a few, and each is built once (up to a bound:
  // a file whose rows leave many columns empty at random could have a mask a row).
  const setFieldsOf = new Map<string, string>();

  return function validate(record: string[], row: number, raw: string): RowResult<ContactRow> {
    if (isBlankRecord(record, mappedIndexes)) return { ok: false, skipped: true, errors: [emptyRowError(row)] };
    if (record.length !== headers.length) return { ok: false, errors: [raggedError(row, record.length, headers.length, raw)] };
    const errors: RowError[] = [];
    const values: (string | null)[] = new Array(CONTACT_STAGE_COLUMNS.length).fill(null);
    let attributes: Record<string, unknown> | null = null;

    for (const p of plans) {
      const cell = record[p.index] ?? "";
      const limit = p.column === "attribute" ? MAX_ATTRIBUTE_LENGTH : p.column === "labels" || p.column === "label_ids" ? MAX_LABELS_PER_ROW * (MAX_LABEL_LENGTH + 1) : MAX_FIELD_LENGTH;
      const problem = cellProblem(row, p.header, cell, limit);
      if (problem) {
        errors.push(problem);
        continue;
      }
      const text = p.column === "attribute" ? cell : cell.trim();
      // An empty cell leaves the stored value as it is.
      if (text.trim() === "") continue;

      if (p.column === "attribute") {
        const value = typedAttribute(text, p.type ?? "string");
        if (value === undefined) {
          errors.push(rowError(row, p.header, cell, `invalid_${p.type}`, `"${text}" is not a valid ${p.type}.`));
          continue;
        }
        (attributes ??= {})[p.attributeKey!] = value;
        continue;
      }
      if (p.column === "email") {
        const email = normaliseEmail(text);
        if (!email) {
          errors.push(rowError(row, p.header, cell, "invalid_email", `"${text}" is not a valid email address.`));
          continue;
        }
        values[slot.get("email")!] = email;
        values[slot.get("email_key")!] = emailKey(email);
        continue;
      }
      if (p.column === "labels") {
        const names = splitLabels(text);
        const tooLong = names.find((n) => n.length > MAX_LABEL_LENGTH);
        if (tooLong) errors.push(rowError(row, p.header, tooLong, "too_long", `A label name is longer than ${MAX_LABEL_LENGTH} characters.`));
        else if (names.length > MAX_LABELS_PER_ROW) errors.push(rowError(row, p.header, cell, "too_many_labels", `The row lists ${names.length} labels; the limit is ${MAX_LABELS_PER_ROW}.`));
        else if (names.length) values[slot.get("labels")!] = [...new Set(names)].join(":");
        continue;
      }
      if (p.column === "label_ids") {
        const ids = splitList(text);
        const bad = ids.find((id) => !/^[1-9]\d{0,17}$/.test(id));
        if (bad !== undefined) errors.push(rowError(row, p.header, bad, "invalid_label_id", `"${bad}" is not a label id.`));
        else if (ids.length > MAX_LABELS_PER_ROW) errors.push(rowError(row, p.header, cell, "too_many_labels", `The row lists ${ids.length} label ids; the limit is ${MAX_LABELS_PER_ROW}.`));
        else if (ids.length) values[slot.get("label_ids")!] = [...new Set(ids)].join(":");
        continue;
      }
      if (NATIVE.has(p.column) || p.column === "segment" || p.column === "segment_value") {
        values[slot.get(p.column)!] = text;
      }
    }

    const keyValue = values[slot.get(identifier === "email" ? "email_key" : identifier)!];
    const identifierFailed = errors.some((e) => e.column === identifierHeader);
    if (!keyValue && !identifierFailed) {
      errors.push(rowError(row, identifierHeader, "", "missing_identifier", `The ${identifier} is empty: it identifies the person.`));
    }
    if (errors.length > 0 || !keyValue) return { ok: false, errors };
    if (attributes) values[slot.get("attributes")!] = JSON.stringify(attributes);
    let mask = "";
    for (const [, i] of FIELD_SLOTS) mask += values[i] === null ? "0" : "1";
    if (attributes) for (const [k] of attributeItems) mask += Object.hasOwn(attributes, k) ? "1" : "0";
    let setFields = setFieldsOf.get(mask);
    if (setFields === undefined) {
      setFields = setFieldsText(values, attributes, attributeItems);
      if (setFieldsOf.size < MAX_SET_FIELDS_KEPT) setFieldsOf.set(mask, setFields);
    }
    const ids = values[labelIdsSlot];
    const labelCell = ids == null ? (values[labelsSlot] ?? null) : `${values[labelsSlot] ?? ""}\u0000${ids}`;
    return { ok: true, staged: { row, key: keyValue, cells: values.map(copyValue).join("\t"), labelCell, setFields } };
  };
}

const MAX_SET_FIELDS_KEPT = 1_024;

/** The fields creating a person sets, in the order of the stage's `changed`, comma-separated (ContactRow.setFields). */
const FIELD_SLOTS = (["email", "external_id", "username", "first_name", "last_name", "name", "company_id"] as const).map((f) => [f, CONTACT_STAGE_COLUMNS.indexOf(f)] as const);

function setFieldsText(values: (string | null)[], attributes: Record<string, unknown> | null, attributeItems: readonly (readonly [string, string])[]): string {
  let out = "";
  for (const [f, i] of FIELD_SLOTS) if (values[i] !== null) out += out === "" ? f : `,${f}`;
  if (attributes) for (const [k, item] of attributeItems) if (Object.hasOwn(attributes, k)) out += out === "" ? item : `,${item}`;
  return out;
}

/** Code point order: byte order of UTF-8, as `collate "C"` sorts (UTF-16 order differs once astral characters appear). */
function byCodePoint(a: string, b: string): number {
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

function typedAttribute(text: string, type: "string" | "number" | "boolean" | "date"): unknown {
  switch (type) {
    case "string":
      return text;
    case "number":
      return parseNumber(text) ?? undefined;
    case "boolean":
      return parseBoolean(text) ?? undefined;
    case "date":
      return parseDate(text)?.toISOString() ?? undefined;
  }
}
