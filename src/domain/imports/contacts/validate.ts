import type { RowResult, StagedRow } from "../handler.js";
import { copyValue } from "../copy.js";
import type { ImportOptions } from "../mapping.js";
import { parseTarget, type Identifier, type MappingTarget } from "../targets.js";
import { MAX_EMAIL_LENGTH, emailKey, normaliseEmail } from "../../people/email.js";
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
  /**
   * Set by the plain-line path (ContactValidator.line): `cells` is empty, and this writes the row's cells instead (as
   * `cells` would be written, with the line end), straight into the batch's text. It holds the line the validator read
   * last: the row must be encoded before the validator's next call (the batch builder encodes every row at once).
   */
  lineCells?: LineCells;
}

/** The COPY cells of the line a ContactValidator read last (ContactRow.lineCells). */
export interface LineCells {
  /** The most bytes `write` writes. */
  readonly bytes: number;
  /** Writes the cells of row `row` (the line read last: anything else throws) into `out` at `at`; returns the end. */
  write(row: number, out: Uint8Array, at: number): number;
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
  return compileContactRows(headers, mapping, identifier, options).validate;
}

/**
 * A compiled mapping: `validate` takes any record; `line` takes a record still as its line of text and reads it
 * without splitting it into cells when the line is plain ASCII (see `line` below), and otherwise returns null for
 * `validate` to take.
 */
export interface ContactValidator {
  validate(record: string[], row: number, raw: string, plain?: boolean): RowResult<ContactRow>;
  /**
   * The row of `raw`, the text of a record that holds no quote (record-scan.ts's `plain` lines), when every cell is
   * printable ASCII without a backslash and the row is valid; else null (`validate` then reads the record and says
   * what is wrong). The row's cells are `lineCells`, valid until the next call.
   */
  line(raw: string, row: number, delimiter: number): ContactRow | null;
}

export function compileContactRows(headers: string[], mapping: Record<string, MappingTarget>, identifier: Identifier, options: ImportOptions): ContactValidator {
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

  function validate(record: string[], row: number, raw: string, plain = false): RowResult<ContactRow> {
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
  }

  // The plain-line path. It gives exactly what validate gives for the same record (the unit tests compare both on
  // random lines), for the lines where that is cheap to be sure of, and leaves every other line to validate: a line
  // with a byte outside printable ASCII, a quote or a backslash (nothing to escape, no Unicode to normalise), a cell
  // starting with an apostrophe (restoreCell), a row of the wrong width, a blank row, and any row with an error.
  // Per row it makes one or two strings (the email and its key; the labels cell), not one per cell, and writes its
  // COPY cells as bytes (a batch's lines joined as strings and encoded were ~40% of the parse thread's time).
  const columns = CONTACT_STAGE_COLUMNS.length;
  /** Per staging column of the current line: 0 none (\N), 1 a range of the line (from/to), 2 a string (text). */
  const where = new Uint8Array(columns);
  const from = new Int32Array(columns);
  const to = new Int32Array(columns);
  const text: (string | null)[] = new Array(columns).fill(null);
  /** The plan of each cell of the line (-1: not mapped). */
  const planOfCell = new Int32Array(headers.length).fill(-1);
  plans.forEach((p, i) => (planOfCell[p.index] = i));
  const attributePlans = plans.filter((p) => p.kind === Kind.Attribute).length;
  /** The line's attributes in plan order: their plan, and their value as a range of the line or as JSON text. */
  const attrPlan = new Int32Array(attributePlans);
  const attrFrom = new Int32Array(attributePlans);
  const attrTo = new Int32Array(attributePlans);
  const attrJson: (string | null)[] = new Array(attributePlans).fill(null);
  const jsonKeyLength = plans.reduce((n, p) => n + (p.jsonKey?.length ?? 0) + 3, 0);
  // An attribute key of ASCII letters, digits and underscores is JSON with nothing to escape. A mapping with another
  // key (keys may hold any Unicode letter) leaves every line to validate, as does one with over 24 attributes.
  const lineOk = numericMask && plans.every((p) => p.jsonKey === undefined || /^"[A-Za-z0-9_]+":$/.test(p.jsonKey));
  /** The line read last, for its row's lineCells. */
  let lastRaw = "";
  let lastRow = -1;
  let lastAttrs = 0;
  const lineCells = {
    bytes: 0,
    write(row: number, out: Uint8Array, at: number): number {
      if (row !== lastRow) throw new Error(`Row ${row}'s line was read over before it was written (the validator read row ${lastRow} since).`);
      return writeLine(out, at);
    },
  };
  const present: (string | null)[] = new Array(columns).fill(null);

  function line(raw: string, row: number, delimiter: number): ContactRow | null {
    if (!lineOk) return null;
    where.fill(0);
    let attrs = 0;
    let attributeBits = 0;
    let typedLength = 0;
    let filled = false;
    let cell = 0;
    let start = 0;
    const length = raw.length;
    for (let i = 0; i <= length; i++) {
      const c = i < length ? raw.charCodeAt(i) : delimiter;
      if (c !== delimiter) {
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return null;
        continue;
      }
      if (cell >= headers.length) return null;
      const pi = planOfCell[cell]!;
      cell++;
      const s = start;
      const e = i;
      start = i + 1;
      if (pi < 0) continue;
      const p = plans[pi]!;
      if (e - s > p.limit || (e > s && raw.charCodeAt(s) === 0x27)) return null;
      let ts = s;
      let te = e;
      while (ts < te && raw.charCodeAt(ts) === 0x20) ts++;
      while (te > ts && raw.charCodeAt(te - 1) === 0x20) te--;
      if (ts === te) continue;
      filled = true;
      switch (p.kind) {
        case Kind.Attribute: {
          attrPlan[attrs] = pi;
          if (p.type === "string" || p.type === undefined) {
            // A string attribute keeps its cell untrimmed (validate's typedAttribute).
            attrFrom[attrs] = s;
            attrTo[attrs] = e;
            attrJson[attrs] = null;
          } else {
            const value = typedAttribute(raw.slice(s, e), p.type);
            if (value === undefined) return null;
            const json = JSON.stringify(value);
            if (!PLAIN_ASCII_JSON.test(json)) return null;
            attrJson[attrs] = json;
            typedLength += json.length;
          }
          attrs++;
          attributeBits |= 1 << p.attributeBit!;
          continue;
        }
        case Kind.Email: {
          const email = plainEmail(raw, ts, te);
          if (email === null) return null;
          where[emailSlot] = 2;
          text[emailSlot] = email;
          where[emailKeySlot] = 2;
          text[emailKeySlot] = email.toLowerCase();
          continue;
        }
        case Kind.Labels: {
          const cellText = raw.slice(ts, te);
          const labels = plainLabels(cellText);
          if (labels === null) return null;
          where[labelsSlot] = 2;
          text[labelsSlot] = labels;
          continue;
        }
        case Kind.LabelIds: {
          const ids = splitList(raw.slice(ts, te));
          if (ids.length > MAX_LABELS_PER_ROW || ids.some((id) => !LABEL_ID.test(id))) return null;
          if (ids.length === 0) continue;
          where[labelIdsSlot] = 2;
          text[labelIdsSlot] = [...new Set(ids)].join(":");
          continue;
        }
        case Kind.Plain:
          where[p.slot] = 1;
          from[p.slot] = ts;
          to[p.slot] = te;
      }
    }
    if (cell !== headers.length || !filled) return null;
    const key = where[keySlot] === 2 ? text[keySlot]! : where[keySlot] === 1 ? raw.slice(from[keySlot]!, to[keySlot]!) : null;
    if (key === null) return null;

    let fieldBits = 0;
    for (let f = 0; f < FIELD_SLOTS.length; f++) if (where[FIELD_SLOTS[f]![1]] !== 0) fieldBits |= 1 << f;
    const mask = fieldBits + attributeBits * 128;
    let setFields = setFieldsOf.get(mask);
    if (setFields === undefined) {
      for (let c = 0; c < columns; c++) present[c] = where[c] === 0 ? null : "";
      setFields = setFieldsText(present, (a) => (attributeBits & (1 << a)) !== 0, attributeItems);
      if (setFieldsOf.size < MAX_SET_FIELDS_KEPT) setFieldsOf.set(mask, setFields);
    }
    const names = where[labelsSlot] === 2 ? text[labelsSlot]! : null;
    const ids = where[labelIdsSlot] === 2 ? text[labelIdsSlot]! : null;
    const labelCell = ids === null ? names : `${names ?? ""}\u0000${ids}`;
    // The email sent once, as validate sends it.
    if (where[emailSlot] === 2) {
      const email = text[emailSlot]!;
      const emailKeyText = text[emailKeySlot]!;
      if (byEmail) {
        where[emailKeySlot] = 0;
        if (email === emailKeyText) where[emailSlot] = 0;
      } else if (emailKeyText === email) where[emailKeySlot] = 0;
    }

    // Every byte written is ASCII: a column is at most the line, its email twice, or the attributes' keys and JSON.
    lineCells.bytes = 3 * length + jsonKeyLength + typedLength + 4 * columns + 16;
    lastRaw = raw;
    lastRow = row;
    lastAttrs = attrs;
    return { row, key, cells: "", labelCell, setFields, lineCells };
  }

  /** The cells of the line read last into `out` at `at` (lineCells.bytes of room); returns the end. */
  function writeLine(out: Uint8Array, at: number): number {
    const raw = lastRaw;
    const attrs = lastAttrs;
    for (let c = 0; c < columns; c++) {
      if (c > 0) out[at++] = 0x09;
      if (c === attributesSlot) {
        if (attrs === 0) {
          out[at++] = 0x5c;
          out[at++] = 0x4e;
          continue;
        }
        out[at++] = 0x7b;
        for (let a = 0; a < attrs; a++) {
          if (a > 0) out[at++] = 0x2c;
          const jsonKey = plans[attrPlan[a]!]!.jsonKey!;
          for (let k = 0; k < jsonKey.length; k++) out[at++] = jsonKey.charCodeAt(k);
          const json = attrJson[a];
          if (json == null) {
            out[at++] = 0x22;
            for (let k = attrFrom[a]!, end = attrTo[a]!; k < end; k++) out[at++] = raw.charCodeAt(k);
            out[at++] = 0x22;
          } else for (let k = 0; k < json.length; k++) out[at++] = json.charCodeAt(k);
        }
        out[at++] = 0x7d;
        continue;
      }
      const w = where[c];
      if (w === 0) {
        out[at++] = 0x5c;
        out[at++] = 0x4e;
      } else if (w === 1) {
        for (let k = from[c]!, end = to[c]!; k < end; k++) out[at++] = raw.charCodeAt(k);
      } else {
        const t = text[c]!;
        for (let k = 0; k < t.length; k++) out[at++] = t.charCodeAt(k);
      }
    }
    out[at++] = 0x0a;
    return at;
  }

  return { validate, line };
}

/** JSON of a typed attribute (a number, a boolean, an ISO date) that COPY takes as it is: printable ASCII, no backslash. */
const PLAIN_ASCII_JSON = /^[\x20-\x5b\x5d-\x7e]*$/;

/** What the email check refuses besides the at sign (EMAIL in people/email.ts, within printable ASCII). */
const NOT_IN_EMAIL = new Uint8Array(128);
for (const c of ' "(),:;<>[\\]') NOT_IN_EMAIL[c.charCodeAt(0)] = 1;

/**
 * The address in raw[from, to) (trimmed, printable ASCII without quote or backslash) when normaliseEmail takes it as
 * it is and emailKey is its lower case; null when it is not valid or has an IDNA label ("xn--", which emailKey decodes).
 */
function plainEmail(raw: string, from: number, to: number): string | null {
  if (to - from > MAX_EMAIL_LENGTH) return null;
  let at = -1;
  let dot = false;
  for (let i = from; i < to; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x40) {
      if (at !== -1 || i === from) return null;
      at = i;
      continue;
    }
    if (NOT_IN_EMAIL[c] === 1) return null;
    // A dot in the domain with a character on either side (X+\.X+).
    if (c === 0x2e && at !== -1 && i > at + 1 && i < to - 1) dot = true;
    // An IDNA label: at the start, or after a dot or the at sign.
    if ((c === 0x78 || c === 0x58) && (i === from || raw.charCodeAt(i - 1) === 0x2e || i === at + 1) && /^xn--/i.test(raw.slice(i, i + 4))) return null;
  }
  if (at === -1 || !dot) return null;
  return raw.slice(from, to);
}

function sameText(text: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}

/** Where plainLabels found each name of the cell it reads; it takes cells of up to SIMPLE_LABELS names itself. */
const SIMPLE_LABELS = 8;
const NAME_FROM = new Int32Array(SIMPLE_LABELS);
const NAME_TO = new Int32Array(SIMPLE_LABELS);

/**
 * The labels cell `text` (trimmed, printable ASCII without quote or backslash) as validate stores it, or null when
 * validate would refuse it: names split on ':', trimmed, empty ones dropped, each once in first-seen order.
 */
function plainLabels(text: string): string | null {
  // Most cells list a few names, each once, without spaces or empty names: they are stored as they are.
  let count = 0;
  let start = 0;
  let simple = text.indexOf(" ") === -1;
  for (let i = 0; simple && i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== 0x3a) continue;
    const length = i - start;
    if (length === 0 || length > MAX_LABEL_LENGTH || count === SIMPLE_LABELS) simple = false;
    else {
      for (let n = 0; n < count && simple; n++) if (NAME_TO[n]! - NAME_FROM[n]! === length && sameText(text, NAME_FROM[n]!, start, length)) simple = false;
      NAME_FROM[count] = start;
      NAME_TO[count] = i;
    }
    count++;
    start = i + 1;
  }
  if (simple) return text;
  const names = splitLabels(text);
  if (names.length > MAX_LABELS_PER_ROW) return null;
  for (const n of names) if (n.length > MAX_LABEL_LENGTH) return null;
  if (names.length === 0) return null;
  return names.length === 1 ? names[0]! : [...new Set(names)].join(":");
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
