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
const EMAIL_SLOT = CONTACT_STAGE_COLUMNS.indexOf("email");
const EMAIL_KEY_SLOT = CONTACT_STAGE_COLUMNS.indexOf("email_key");
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

/** What a mapped column is, as validate() branches on it (one small integer compare, not string compares). */
const enum Kind {
  Attribute,
  Email,
  Labels,
  LabelIds,
  Plain,
  /** Mapped to a staging column no cell fills (checked, never stored). */
  None,
}

interface Plan {
  index: number;
  header: string;
  kind: Kind;
  /** The staging column the cell fills (CONTACT_STAGE_COLUMNS); -1 for an attribute. */
  slot: number;
  /** The longest cell accepted (cellProblem). */
  limit: number;
  attributeKey?: string;
  type?: "string" | "number" | "boolean" | "date";
  /** `"key":` as the attributes' JSON text writes it. */
  jsonKey?: string;
  /** The attribute's place among attributeItems (the row's attribute bits). */
  attributeBit?: number;
}

/** Compiles the mapping once; the returned function validates one CSV record into a staging row. */
export function contactRowValidator(headers: string[], mapping: Record<string, MappingTarget>, identifier: Identifier, options: ImportOptions) {
  const slot = new Map<string, number>(CONTACT_STAGE_COLUMNS.map((c, i) => [c, i]));
  const plans: Plan[] = [];
  headers.forEach((header, index) => {
    const target = parseTarget(mapping[header] ?? "ignore");
    if (target.type === "ignore") return;
    if (target.type === "attribute") {
      const type = (Object.hasOwn(options.attributeTypes, target.key!) ? options.attributeTypes[target.key!] : undefined) ?? "string";
      plans.push({ index, header, kind: Kind.Attribute, slot: -1, limit: MAX_ATTRIBUTE_LENGTH, attributeKey: target.key!, type, jsonKey: `${JSON.stringify(target.key!)}:` });
    } else if (slot.has(target.type)) {
      const column = target.type as StageColumn;
      const kind = column === "email" ? Kind.Email : column === "labels" ? Kind.Labels : column === "label_ids" ? Kind.LabelIds : Kind.Plain;
      const stored = kind !== Kind.Plain || NATIVE.has(column) || column === "segment" || column === "segment_value";
      const limit = kind === Kind.Labels || kind === Kind.LabelIds ? MAX_LABELS_PER_ROW * (MAX_LABEL_LENGTH + 1) : MAX_FIELD_LENGTH;
      plans.push({ index, header, kind: stored ? kind : Kind.None, slot: slot.get(column)!, limit });
    }
  });
  const identifierHeader = plans.find((p) => p.slot >= 0 && CONTACT_STAGE_COLUMNS[p.slot] === identifier)?.header ?? identifier;
  // The attribute keys the mapping can set, in code point order, each as it appears in set_fields: a row lists those it set.
  const attributeItems = [...new Set(plans.flatMap((p) => (p.attributeKey === undefined ? [] : [p.attributeKey])))]
    .sort(byCodePoint)
    .map((k) => [k, `attributes.${k}`] as const);
  for (const p of plans) if (p.attributeKey !== undefined) p.attributeBit = attributeItems.findIndex(([k]) => k === p.attributeKey);
  const mappedIndexes = plans.map((p) => p.index);

  const emailSlot = EMAIL_SLOT;
  const emailKeySlot = EMAIL_KEY_SLOT;
  const byEmail = identifier === "email";
  const attributesSlot = slot.get("attributes")!;
  const labelsSlot = slot.get("labels")!;
  const labelIdsSlot = slot.get("label_ids")!;
  const keySlot = slot.get(identifier === "email" ? "email_key" : identifier)!;
  // set_fields of a row, by what it sets (the fields' bits, then the attributes'): a file repeats a few, and each is
  // built once (up to a bound: a file whose rows leave many columns empty at random could have one a row). A number
  // while the bits fit in one (7 fields and up to 24 attributes), else a string of them.
  const setFieldsOf = new Map<number | string, string>();
  const numericMask = attributeItems.length <= 24;
  const attributeSet: boolean[] = new Array(attributeItems.length).fill(false);

  return function validate(record: string[], row: number, raw: string, plain = false): RowResult<ContactRow> {
    if (isBlankRecord(record, mappedIndexes)) return { ok: false, skipped: true, errors: [emptyRowError(row)] };
    if (record.length !== headers.length) return { ok: false, errors: [raggedError(row, record.length, headers.length, raw)] };
    let errors: RowError[] | null = null;
    const values: (string | null)[] = new Array(CONTACT_STAGE_COLUMNS.length).fill(null);
    // The attributes as JSON text, written as they are read (keys are distinct: a mapping names a target once).
    let attributes = "";
    let attributeBits = 0;

    for (let i = 0; i < plans.length; i++) {
      const p = plans[i]!;
      const cell = record[p.index] ?? "";
      const problem = cellProblem(row, p.header, cell, p.limit);
      if (problem) {
        (errors ??= []).push(problem);
        continue;
      }
      if (p.kind === Kind.Attribute) {
        // An empty cell leaves the stored value as it is.
        if (cell.trim() === "") continue;
        const value = typedAttribute(cell, p.type ?? "string");
        if (value === undefined) {
          (errors ??= []).push(rowError(row, p.header, cell, `invalid_${p.type}`, `"${cell}" is not a valid ${p.type}.`));
          continue;
        }
        if (typeof value === "string" && PLAIN_JSON_STRING.test(value)) attributes += `${attributes === "" ? "{" : ","}${p.jsonKey!}"${value}"`;
        else {
          const json = JSON.stringify(value);
          attributes += `${attributes === "" ? "{" : ","}${p.jsonKey!}${json}`;
          // JSON escapes with backslashes (a quote, a control character): COPY must escape them in turn.
          if (typeof value === "string") plain = false;
        }
        if (numericMask) attributeBits |= 1 << p.attributeBit!;
        else attributeSet[p.attributeBit!] = true;
        continue;
      }
      const text = cell.trim();
      if (text === "") continue;
      switch (p.kind) {
        case Kind.Email: {
          const email = normaliseEmail(text);
          if (!email) {
            (errors ??= []).push(rowError(row, p.header, cell, "invalid_email", `"${text}" is not a valid email address.`));
            continue;
          }
          values[emailSlot] = email;
          values[emailKeySlot] = emailKey(email);
          continue;
        }
        case Kind.Labels: {
          const names = splitLabels(text);
          const tooLong = names.find((n) => n.length > MAX_LABEL_LENGTH);
          if (tooLong) (errors ??= []).push(rowError(row, p.header, tooLong, "too_long", `A label name is longer than ${MAX_LABEL_LENGTH} characters.`));
          else if (names.length > MAX_LABELS_PER_ROW) (errors ??= []).push(rowError(row, p.header, cell, "too_many_labels", `The row lists ${names.length} labels; the limit is ${MAX_LABELS_PER_ROW}.`));
          else if (names.length) values[labelsSlot] = names.length === 1 ? names[0]! : [...new Set(names)].join(":");
          continue;
        }
        case Kind.LabelIds: {
          const ids = splitList(text);
          const bad = ids.find((id) => !LABEL_ID.test(id));
          if (bad !== undefined) (errors ??= []).push(rowError(row, p.header, bad, "invalid_label_id", `"${bad}" is not a label id.`));
          else if (ids.length > MAX_LABELS_PER_ROW) (errors ??= []).push(rowError(row, p.header, cell, "too_many_labels", `The row lists ${ids.length} label ids; the limit is ${MAX_LABELS_PER_ROW}.`));
          else if (ids.length) values[labelIdsSlot] = [...new Set(ids)].join(":");
          continue;
        }
        case Kind.Plain:
          values[p.slot] = text;
      }
    }

    const keyValue = values[keySlot];
    if (errors !== null || !keyValue) {
      if (!keyValue && !errors?.some((e) => e.column === identifierHeader)) {
        (errors ??= []).push(rowError(row, identifierHeader, "", "missing_identifier", `The ${identifier} is empty: it identifies the person.`));
      }
      attributeSet.fill(false);
      return { ok: false, errors: errors! };
    }
    if (attributes !== "") values[attributesSlot] = `${attributes}}`;
    let fieldBits = 0;
    for (let f = 0; f < FIELD_SLOTS.length; f++) if (values[FIELD_SLOTS[f]![1]] !== null) fieldBits |= 1 << f;
    let mask: number | string;
    if (numericMask) mask = fieldBits + attributeBits * 128;
    else {
      mask = `${fieldBits}:`;
      for (let a = 0; a < attributeSet.length; a++) mask += attributeSet[a] ? "1" : "0";
    }
    let setFields = setFieldsOf.get(mask);
    if (setFields === undefined) {
      setFields = setFieldsText(values, (a) => (numericMask ? (attributeBits & (1 << a)) !== 0 : attributeSet[a]!), attributeItems);
      if (setFieldsOf.size < MAX_SET_FIELDS_KEPT) setFieldsOf.set(mask, setFields);
    }
    if (!numericMask) attributeSet.fill(false);
    const ids = values[labelIdsSlot];
    const labelCell = ids == null ? (values[labelsSlot] ?? null) : `${values[labelsSlot] ?? ""}\u0000${ids}`;
    // The email is sent once (copySource in batch.ts derives the rest): with the email as identifier the key is the
    // email's key, so email_key goes as \N and so does the email when it is its own key (lower case, as most are);
    // otherwise email_key goes as \N when it equals the email. A fifth of a batch's COPY bytes.
    const email = values[EMAIL_SLOT];
    const key = values[EMAIL_KEY_SLOT];
    if (byEmail) {
      values[EMAIL_KEY_SLOT] = null;
      if (email === key) values[EMAIL_SLOT] = null;
    } else if (key === email) values[EMAIL_KEY_SLOT] = null;
    // A plain record's values hold nothing COPY escapes (the email check refuses backslashes and whitespace; every other
    // value is a cell, trimmed or split, a number, a date or a label id): they are joined as they are.
    let cells = plain ? (values[0] ?? "\\N") : copyValue(values[0]);
    for (let c = 1; c < values.length; c++) cells += `\t${plain ? (values[c] ?? "\\N") : copyValue(values[c])}`;
    return { ok: true, staged: { row, key: keyValue, cells, labelCell, setFields } };
  };
}

const LABEL_ID = /^[1-9]\d{0,17}$/;
/** A string JSON writes as it is between quotes: no quote, backslash, control character or surrogate to escape. */
// eslint-disable-next-line no-control-regex -- the control characters are what it looks for
const PLAIN_JSON_STRING = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

const MAX_SET_FIELDS_KEPT = 1_024;

/** The fields creating a person sets, in the order of the stage's `changed`, comma-separated (ContactRow.setFields). */
const FIELD_SLOTS = (["email", "external_id", "username", "first_name", "last_name", "name", "company_id"] as const).map((f) => [f, CONTACT_STAGE_COLUMNS.indexOf(f)] as const);

function setFieldsText(values: (string | null)[], hasAttribute: (index: number) => boolean, attributeItems: readonly (readonly [string, string])[]): string {
  let out = "";
  for (const [f, i] of FIELD_SLOTS) if (values[i] !== null) out += out === "" ? f : `,${f}`;
  for (let a = 0; a < attributeItems.length; a++) if (hasAttribute(a)) out += out === "" ? attributeItems[a]![1] : `,${attributeItems[a]![1]}`;
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
