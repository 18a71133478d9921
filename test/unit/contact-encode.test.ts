import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { addRecord, newBatch, produceBatches } from "../../src/domain/imports/batch-builder.js";
import { encodeContactRows, markUniqueRows } from "../../src/domain/imports/contacts/batch.js";
import { contactsHandler } from "../../src/domain/imports/contacts/handler.js";
import { addKey, markComplete, mayRepeat, newKeySketch, sketchFileKeys } from "../../src/domain/imports/key-sketch.js";
import { LocalStorage } from "../../src/storage/local.js";
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

  it("sends the email once: by email, email_key as \\N and the email too when it is its own key; by another identifier, email_key as \\N when it equals the email", () => {
    const columns = (identifier: "email" | "external_id", records: string[][]) => {
      const validate = contactRowValidator(["email", "external_id"], { email: "email", external_id: "external_id" }, identifier, importOptionsSchema.parse({}));
      const rows = records.map((record, i) => {
        const res = validate(record, i + 1, record.join(","));
        if (!res.ok) throw new Error(JSON.stringify(res.errors));
        return res.staged;
      });
      const lines = new TextDecoder().decode(encodeContactRows(rows).copy).split("\n").slice(0, -1);
      const at = (name: string) => 5 + CONTACT_STAGE_COLUMNS.indexOf(name as never);
      return lines.map((l) => l.split("\t")).map((c) => [c[1], c[at("email")], c[at("email_key")], c[at("external_id")]]);
    };
    expect(columns("email", [["ann@x.io", "a-1"], ["Bob@X.io", "b-1"], ["İz@x.io", ""]])).toEqual([
      ["ann@x.io", "\\N", "\\N", "a-1"],
      ["bob@x.io", "Bob@X.io", "\\N", "b-1"],
      ["i̇z@x.io", "İz@x.io", "\\N", "\\N"],
    ]);
    expect(columns("external_id", [["ann@x.io", "a-1"], ["Bob@X.io", "b-1"], ["", "c-1"]])).toEqual([
      ["a-1", "ann@x.io", "\\N", "a-1"],
      ["b-1", "Bob@X.io", "bob@x.io", "b-1"],
      ["c-1", "\\N", "\\N", "c-1"],
    ]);
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

describe("a contact row's attributes and set fields (contactRowValidator)", () => {
  const attributesOf = (row: ContactRow) => row.cells.split("\t")[CONTACT_STAGE_COLUMNS.indexOf("attributes")]!;

  it("writes the attributes as the JSON of their typed values, escaping what JSON must (and COPY after it)", () => {
    const hs = ["email", "a", "b", "n", "ok", "on", "k1"];
    const validate = contactRowValidator(
      hs,
      { email: "email", a: "attribute:a", b: "attribute:b", n: "attribute:n", ok: "attribute:ok", on: "attribute:on", k1: "attribute:1" },
      "email",
      importOptionsSchema.parse({ attributeTypes: { n: "number", ok: "boolean", on: "date" } }),
    );
    const cells = ['he said "hi"', "back\\slash\u0001\ud83d\ude00\ud800", "-1.5e3", "yes", "2024-02-03", "  keep spaces  "];
    const res = validate(["a@x.io", ...cells], 1, "");
    if (!res.ok) throw new Error(JSON.stringify(res.errors));
    const field = attributesOf(res.staged);
    const json = unescapeCopy(field);
    expect(field).not.toMatch(/[\t\n\r]/);
    expect(JSON.parse(json)).toEqual({ a: 'he said "hi"', b: "back\\slash\u0001\ud83d\ude00\ud800", n: -1500, ok: true, on: "2024-02-03T00:00:00.000Z", 1: "  keep spaces  " });
    // The same text JSON.stringify gives an object of the values in column order: the lone surrogate escaped, the pair kept.
    expect(json).toBe(`{"a":${JSON.stringify(cells[0])},"b":${JSON.stringify(cells[1])},"n":-1500,"ok":true,"on":"2024-02-03T00:00:00.000Z","1":"  keep spaces  "}`);
    expect(res.staged.setFields).toBe("email,attributes.1,attributes.a,attributes.b,attributes.n,attributes.ok,attributes.on");
    // An empty or blank attribute cell sets nothing; a row with none has no attributes.
    const none = validate(["b@x.io", "", " ", "", "", "", ""], 2, "");
    expect(none.ok && attributesOf(none.staged)).toBe("\\N");
    expect(none.ok && none.staged.setFields).toBe("email");
  });

  it("tells rows apart by what they set when the mapping names more attributes than fit in a number's bits", () => {
    const keys = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    const validate = contactRowValidator(["email", ...keys], { email: "email", ...Object.fromEntries(keys.map((k) => [k, `attribute:${k}`])) }, "email", importOptionsSchema.parse({}));
    const row = (set: number[]) => {
      const res = validate(["x@x.io", ...keys.map((_, i) => (set.includes(i) ? "v" : ""))], 1, "");
      if (!res.ok) throw new Error(JSON.stringify(res.errors));
      return res.staged.setFields;
    };
    // Bits past the 24th (and a row after one with more set) each give their own set fields.
    expect(row([0, 29])).toBe("email,attributes.k00,attributes.k29");
    expect(row([29])).toBe("email,attributes.k29");
    expect(row([0, 25, 29])).toBe("email,attributes.k00,attributes.k25,attributes.k29");
    expect(row([0, 29])).toBe("email,attributes.k00,attributes.k29");
    expect(row([])).toBe("email");
  });

  it("joins a plain record's values as they are (ParsedRecord.plain): the same rows as escaping each value gives", () => {
    // Cells without a backslash, tab or line break (a plain record's), but with what JSON escapes (a quote, a control
    // character, a lone surrogate): an attribute holding one makes the row's text escaped after all.
    const hs = ["email", "first_name", "labels", "note", "n", "on"];
    const validate = contactRowValidator(
      hs,
      { email: "email", first_name: "first_name", labels: "labels", note: "attribute:note", n: "attribute:n", on: "attribute:on" },
      "email",
      importOptionsSchema.parse({ attributeTypes: { n: "number", on: "date" } }),
    );
    const cells = ["", " Zoë ", 'say "hi"', "中文", "'=cmd", "x\u0001y", "a:b", "42", "2024-05-01", "\ud800", "🙂"];
    let row = 0;
    for (const a of cells) for (const b of cells) for (const c of cells) {
      row += 1;
      const record = [` U${row}@X.io`, a, b, c, b, c];
      const escaped = validate(record, row, "", false);
      const plain = validate(record, row, "", true);
      expect(plain, JSON.stringify(record)).toEqual(escaped);
    }
    // A plain record with a quote in an attribute: its JSON's backslashes are doubled for COPY, as without the flag.
    const quoted = validate(["q@x.io", "", "", 'say "hi"', "", ""], 1, "", true);
    expect(quoted.ok && attributesOf(quoted.staged)).toBe('{"note":"say \\\\"hi\\\\""}');
  });
});

describe("a batch built row by row (addRecord) with the file's key sketch", () => {
  const contacts = () =>
    contactsHandler(
      { workspaceId: "w", importId: "i", identifier: "email", options: importOptionsSchema.parse({}), headerOf: { email: "email" }, createdSegmentId: null, dryRun: false },
      headers,
      { ...mapping },
    );
  /** Builds one batch of `records` row by row, as produceBatches does, and finishes its encoding. */
  function build(records: string[][], sketch?: ReturnType<typeof newKeySketch>) {
    const batch = newBatch({ byte: 0, row: 0, line: 1 });
    const seen = new Map<string, number>();
    records.forEach((record, i) => addRecord(batch, seen, { record, row: i + 1, endByte: 0, endLine: i + 2, raw: record.join(",") }, contacts(), "email", sketch, 10));
    // Every row was encoded as it came: none is held to the batch's end.
    expect(batch.staged).toEqual([]);
    const encoded = batch.encoder!.finish();
    const lines = new TextDecoder().decode(encoded.copy).split("\n").slice(0, -1).map((l) => l.split("\t"));
    return { batch, encoded, lines };
  }

  it("encodes every row as it comes, and a later row for the same person drops the earlier one's line", () => {
    const records = [
      ["a@x.io", "Ann", "", "", ""],
      ["twice@x.io", "First", "", "", ""],
      ["b@x.io", "Bea", "vip", "", ""],
      ["TWICE@x.io", "Second", "", "", ""],
      ["c@x.io", "Cy", "", "", ""],
    ];
    const sketch = newKeySketch(1024);
    for (const r of records) addKey(sketch, r[0]!.toLowerCase());
    markComplete(sketch);
    const { batch, encoded, lines } = build(records, sketch);
    expect(batch.errors).toEqual([expect.objectContaining({ row: 2, code: "duplicate_in_file", value: "twice@x.io", message: expect.stringContaining("Row 4") })]);
    expect(batch.skipped).toBe(1);
    // Row, key, label cell, set cell, may_repeat: only the repeated person's row may repeat.
    expect(lines.map((l) => l.slice(0, 5))).toEqual([
      ["1", "a@x.io", "\\N", "1", "f"],
      ["3", "b@x.io", "1", "1", "f"],
      ["4", "twice@x.io", "\\N", "1", "t"],
      ["5", "c@x.io", "\\N", "1", "f"],
    ]);
    expect(lines[2]![5 + CONTACT_STAGE_COLUMNS.indexOf("first_name")]).toBe("Second");
    expect(encoded).toMatchObject({ rows: 4, mayRepeat: 1, labelCells: ["vip"] });
  });

  it("without a sketch, keeps the last row of each person and drops the rest, whatever their order", () => {
    const records = [
      ["p@x.io", "P1", "gold", "", ""],
      ["q@x.io", "Q1", "", "", ""],
      ["P@x.io", "P2", "", "", ""],
      ["r@x.io", "R1", "silver", "", ""],
      [" p@X.io ", "P3", "", "", ""],
      ["q@x.io", "Q2", "vip", "", ""],
    ];
    const { batch, encoded, lines } = build(records);
    expect(batch.errors.map((e) => [e.row, e.code])).toEqual([
      [1, "duplicate_in_file"],
      [3, "duplicate_in_file"],
      [2, "duplicate_in_file"],
    ]);
    expect(batch.skipped).toBe(3);
    expect(lines.map((l) => [l[0], l[1], l[5 + CONTACT_STAGE_COLUMNS.indexOf("first_name")]])).toEqual([
      ["4", "r@x.io", "R1"],
      ["5", "p@x.io", "P3"],
      ["6", "q@x.io", "Q2"],
    ]);
    expect(encoded.rows).toBe(3);
    expect(encoded.mayRepeat).toBe(3);
    // "gold" was listed only by a dropped row: its cell names no label (none is created for it); the numbers stay.
    expect(encoded.labelCells).toEqual(["", "silver", "vip"]);
    expect(lines.map((l) => l[2])).toEqual(["2", "\\N", "3"]);
    // The text is exactly the kept lines: encoding them alone gives the same bytes but for the label numbering.
    const alone = new TextDecoder().decode(encodeContactRows(staged([records[3]!, records[4]!, records[5]!]).map((r, i) => ({ ...r, row: i + 4 }))).copy);
    expect(alone.split("\n").map((l) => l.split("\t").slice(5).join("\t"))).toEqual(lines.map((l) => l.slice(5).join("\t")).concat([""]));
  });

  it("produces the same rows, once each, whether the sketch marks them or not", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "contact-encode-"));
    try {
      const lines = ["email,first_name,labels,label_ids,note"];
      for (let i = 1; i <= 95; i++) lines.push(`${i % 9 === 0 ? "dup" + (i % 4) : "p" + i}@x.io,N${i},${i % 3 ? "vip" : ""},,n${i}`);
      const csv = lines.join("\n") + "\n";
      writeFileSync(path.join(dir, "f.csv"), csv);
      const storage = new LocalStorage(dir);
      const from = { byte: Buffer.byteLength(lines[0]! + "\n"), row: 0, line: 1 };
      const ctx = { workspaceId: "w", importId: "i", identifier: "email" as const, options: importOptionsSchema.parse({}), headerOf: { email: "email" }, createdSegmentId: null, dryRun: false };
      const plan = { kind: "contacts" as const, ctx, headers, mapping: { ...mapping }, storageKey: "f.csv", delimiter: ",", from, batchSize: 20, fileWidth: headers.length };
      const read = async (withSketch: boolean) => {
        const repeats = withSketch ? await sketchFileKeys(storage, { storageKey: "f.csv", delimiter: ",", sizeBytes: Buffer.byteLength(csv) }, from, 0, "email") : undefined;
        const out: { lines: string[]; errors: number[] }[] = [];
        for await (const { batch } of produceBatches(storage, { ...plan, repeats })) {
          const text = new TextDecoder().decode(batch.encoded?.copy ?? new Uint8Array());
          // Without the may_repeat flag (column 5) and the label/set numbering (their order follows the encoding order).
          const rows = text.split("\n").slice(0, -1).map((l) => l.split("\t")).map((c) => [c[0], c[1], ...c.slice(5)].join("\t"));
          out.push({ lines: rows.sort(), errors: batch.errors.map((e) => e.row) });
          expect(batch.encoder).toBeUndefined();
        }
        return out;
      };
      const plain = await read(false);
      const sketched = await read(true);
      expect(sketched).toEqual(plain);
      expect(plain.flatMap((b) => b.lines)).toHaveLength(95 - plain.flatMap((b) => b.errors).length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("rows of a batch parsed before the file's key sketch was complete, marked once it is (markUniqueRows)", () => {
  it("gives each row the flag the complete sketch would have given it as it was read, escaped and non-ASCII keys too", () => {
    const rows = staged([
      ["a@x.io", "Ann", "vip", "", ""],
      ["b@x.io", "Bea", "", "", "tab\there"],
      ["c@x.io", "Cy", "", "", ""],
      ["d@x.io", "Dee", "", "", ""],
      ["e@x.io", "Eve", "", "", ""],
      ["f@x.io", "Fay", "", "", ""],
    ]);
    // Keys as other identifiers may have them: a backslash, a tab, a line break, non-ASCII letters (COPY escapes the first three).
    const keys = ["a@x.io", "back\\slash", "tab\tin", "line\nbreak", "çağrı@örnek.com.tr", "ΑΒΓ-7"];
    rows.forEach((r, i) => (r.key = keys[i]!));
    const sketch = newKeySketch(4096);
    for (const k of keys) addKey(sketch, k);
    // Two of them have another row in the file.
    addKey(sketch, "tab\tin");
    addKey(sketch, "ΑΒΓ-7");
    markComplete(sketch);
    const unmarked = encodeContactRows(rows);
    expect(unmarked.mayRepeat).toBe(6);
    markUniqueRows(unmarked, sketch);
    const asRead = encodeContactRows(rows.map((r) => ({ ...r, repeat: mayRepeat(sketch, r.key) })));
    expect(Buffer.from(unmarked.copy).toString()).toBe(Buffer.from(asRead.copy).toString());
    expect(unmarked.mayRepeat).toBe(2);
    expect(asRead.mayRepeat).toBe(2);
    const flags = new TextDecoder().decode(unmarked.copy).split("\n").slice(0, -1).map((l) => l.split("\t")[4]);
    expect(flags).toEqual(["f", "f", "t", "f", "f", "t"]);
  });

  it("makes the batches of a file read without the sketch what they are read with it", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "contact-mark-"));
    try {
      const lines = ["email,first_name,labels,label_ids,note"];
      for (let i = 1; i <= 95; i++) lines.push(`${i % 9 === 0 ? "dup" + (i % 4) : i % 7 === 0 ? "ü" + i : "p" + i}@x.io,N${i},${i % 3 ? "vip" : ""},,n${i}`);
      const csv = lines.join("\n") + "\n";
      writeFileSync(path.join(dir, "f.csv"), csv);
      const storage = new LocalStorage(dir);
      const from = { byte: Buffer.byteLength(lines[0]! + "\n"), row: 0, line: 1 };
      const ctx = { workspaceId: "w", importId: "i", identifier: "email" as const, options: importOptionsSchema.parse({}), headerOf: { email: "email" }, createdSegmentId: null, dryRun: false };
      const plan = { kind: "contacts" as const, ctx, headers, mapping: { ...mapping }, storageKey: "f.csv", delimiter: ",", from, batchSize: 20, fileWidth: headers.length };
      const sketch = await sketchFileKeys(storage, { storageKey: "f.csv", delimiter: ",", sizeBytes: Buffer.byteLength(csv) }, from, 0, "email");
      const read = async (repeats?: typeof sketch) => {
        const out: { text: string; mayRepeat: number; sketched: boolean }[] = [];
        for await (const { batch } of produceBatches(storage, { ...plan, repeats })) {
          if (!repeats) markUniqueRows(batch.encoded!, sketch);
          out.push({ text: new TextDecoder().decode(batch.encoded!.copy), mayRepeat: batch.encoded!.mayRepeat, sketched: batch.sketched === true });
        }
        return out;
      };
      const marked = await read();
      const sketched = await read(sketch);
      expect(marked.map((b) => ({ ...b, sketched: true }))).toEqual(sketched);
      expect(marked.every((b) => !b.sketched) && sketched.every((b) => b.sketched)).toBe(true);
      // Some rows repeat (the dup rows), most do not.
      const total = sketched.reduce((n, b) => n + b.mayRepeat, 0);
      expect(total).toBeGreaterThan(0);
      expect(total).toBeLessThan(30);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
