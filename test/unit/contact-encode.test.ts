import { describe, expect, it } from "vitest";
import { encodeContactRows } from "../../src/domain/imports/contacts/batch.js";
import { CONTACT_STAGE_COLUMNS, contactRowValidator, type ContactRow } from "../../src/domain/imports/contacts/validate.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";

const headers = ["email", "first_name", "labels", "label_ids", "note"];
const mapping = { email: "email", first_name: "first_name", labels: "labels", label_ids: "label_ids", note: "attribute:note" } as const;

function staged(records: string[][]): ContactRow[] {
  const validate = contactRowValidator(headers, mapping, "email", importOptionsSchema.parse({}));
  return records.map((record, i) => {
    const res = validate(record, i + 1, record.join(","));
    if (!res.ok) throw new Error(JSON.stringify(res.errors));
    return res.staged;
  });
}

/** A COPY text field as PostgreSQL reads it (\N, a null, stays as it is). */
function unescapeCopy(field: string): string {
  return field === "\\N" ? field : field.replace(/\\(.)/g, (_, c: string) => (c === "t" ? "\t" : c === "n" ? "\n" : c === "r" ? "\r" : c));
}

describe("a batch's COPY text (encodeContactRows)", () => {
  it("numbers each distinct label cell and set of filled columns, escapes cells, and is the UTF-8 of the lines", () => {
    const rows = staged([
      ["a@x.io", "Ann", "vip", "", "tab\there"],
      ["b@x.io", "", "", "", ""],
      ["c@x.io", "Cé", "vip", "", "back\\slash"],
      ["d@x.io", "Dee", "", "7:3", ""],
    ]);
    rows[1]!.repeat = false;
    const enc = encodeContactRows(rows);
    const text = new TextDecoder().decode(enc.copy);
    const lines = text.split("\n");
    expect(lines.at(-1)).toBe("");
    // row, key, label_cell, set_cell, may_repeat, then the staging columns.
    expect(lines.slice(0, 4).map((l) => l.split("\t").slice(0, 5))).toEqual([
      ["1", "a@x.io", "1", "1", "t"],
      ["2", "b@x.io", "\\N", "2", "f"],
      ["3", "c@x.io", "1", "1", "t"],
      ["4", "d@x.io", "2", "3", "t"],
    ]);
    expect(enc.labelCells).toEqual(["vip", "\u00007:3"]);
    expect(enc.setFields).toEqual(["email,first_name,attributes.note", "email", "email,first_name"]);
    // The attributes column (after the five above, then email, email_key … company_id) reads back as its JSON.
    const attributes = lines.slice(0, 4).map((l) => unescapeCopy(l.split("\t")[5 + CONTACT_STAGE_COLUMNS.indexOf("attributes")]!));
    expect(attributes).toEqual([JSON.stringify({ note: "tab\there" }), "\\N", JSON.stringify({ note: "back\\slash" }), "\\N"]);
    expect(lines[2]!.split("\t")[5 + CONTACT_STAGE_COLUMNS.indexOf("first_name")]).toBe("Cé");
  });

  it("grows its buffer for rows of characters UTF-8 writes in several bytes, losing none of them", () => {
    // Greek, CJK and astral characters: 2, 3 and 4 bytes each, far beyond the room reserved for ASCII text.
    const wide = "Ω語😀".repeat(200);
    const rows = staged(Array.from({ length: 50 }, (_, i) => [`p${i}@x.io`, wide, "", "", `${i}${wide}`]));
    const enc = encodeContactRows(rows);
    const text = new TextDecoder().decode(enc.copy);
    const lines = text.split("\n").slice(0, -1);
    expect(lines).toHaveLength(50);
    lines.forEach((l, i) => {
      const cols = l.split("\t");
      expect(cols[1]).toBe(`p${i}@x.io`);
      expect(cols).toContain(wide);
      expect(l).toContain(`"note":"${i}${wide}"`);
    });
    expect(enc.copy.length).toBe(Buffer.byteLength(text));
  });
});
