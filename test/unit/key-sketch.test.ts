import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { contactRowValidator } from "../../src/domain/imports/contacts/validate.js";
import { addKey, estimateRows, mayRepeat, newKeySketch, sketchComplete, sketchFileKeys, sketchRecords, type KeySketch } from "../../src/domain/imports/key-sketch.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";
import { identifierKey } from "../../src/domain/imports/parts.js";
import { LocalStorage } from "../../src/storage/local.js";

const dir = mkdtempSync(path.join(tmpdir(), "key-sketch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the key sketch", () => {
  it("never shows a repeated key as unique, and shows few unique keys as repeated", () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => `person-${i}@example.test`);
    const repeated = new Set(keys.filter((_, i) => i % 7 === 0));
    // A file of ~60k rows of ~30 bytes: a slot per 2 bytes (2^20 slots). A key marks two slots: ~1.5% of unique keys
    // find both hit by other keys (with one slot a key, ~6% would share it).
    const sketch = newKeySketch(60_000 * 30);
    for (const k of keys) addKey(sketch, k);
    for (const k of repeated) addKey(sketch, k);
    for (const k of repeated) expect(mayRepeat(sketch, k)).toBe(true);
    const unique = keys.filter((k) => !repeated.has(k));
    const falseRepeats = unique.filter((k) => mayRepeat(sketch, k)).length;
    expect(falseRepeats / unique.length).toBeLessThan(0.025);
  });

  it("sizes itself by the file: 4,096 slots at least, 2^25 (8 MiB) at most", () => {
    expect(newKeySketch(0).byteLength).toBe(4096 / 4);
    expect(newKeySketch(32 * 1024 * 1024).byteLength).toBe((16 * 1024 * 1024) / 4);
    expect(newKeySketch(10 * 1024 ** 3).byteLength).toBe(8 * 1024 * 1024);
    expect(newKeySketch(0).buffer).toBeInstanceOf(SharedArrayBuffer);
  });

  it("reads a stored file's identifier keys as validation does: spellings of one address are one key", async () => {
    const storage = new LocalStorage(dir);
    // Rows 1/3 (case), 2/6 (NFC: composed and decomposed é), 4/7 (a Unicode domain and its punycode), 5/8 (final sigma).
    const emails = ["Ann@X.test", "r\u00e9my@x.test", "ann@x.test", "a@b\u00fccher.test", "ΟΔΥΣΣΕΑΣ@x.test", "re\u0301my@x.test", "a@xn--bcher-kva.test", "οδυσσεας@x.test", "solo@x.test", "not an email", ""];
    const csv = ["first_name,email", ...emails.map((e, i) => `n${i},${e}`)].join("\n");
    writeFileSync(path.join(dir, "keys.csv"), csv);
    const header = "first_name,email\n";
    const sketch = await sketchFileKeys(storage, { storageKey: "keys.csv", delimiter: ",", sizeBytes: csv.length }, { byte: Buffer.byteLength(header), row: 0, line: 1 }, 1, "email");
    const validate = contactRowValidator(["first_name", "email"], { first_name: "first_name", email: "email" }, "email", importOptionsSchema.parse({}));
    const keyOf = (e: string) => {
      const res = validate(["x", e], 1, `x,${e}`);
      return res.ok ? res.staged.key : null;
    };
    for (const e of emails) {
      // What the sketch counts is the key validation gives the row (null: the row fails and has none).
      expect(identifierKey(["x", e], 1, "email"), e).toBe(keyOf(e));
    }
    for (const e of emails.slice(0, 8)) expect(mayRepeat(sketch, keyOf(e)!), e).toBe(true);
    expect(mayRepeat(sketch, keyOf("solo@x.test")!)).toBe(false);
  });

  it("keys an external id or a username as validation does (a batch relies on it: a row the sketch shows unique is not held)", () => {
    const cells = ["  ext-1 ", "EXT-1", "ext\u00a01", "Ünï", "'=lead", "a b", "\tx\t"];
    for (const identifier of ["external_id", "username"] as const) {
      const validate = contactRowValidator(["first_name", identifier], { first_name: "first_name", [identifier]: identifier }, identifier, importOptionsSchema.parse({}));
      for (const c of cells) {
        const res = validate(["x", c], 1, `x,${c}`);
        expect(identifierKey(["x", c], 1, identifier), c).toBe(res.ok ? res.staged.key : null);
      }
    }
  });

  it("reads plain lines from their bytes and counts exactly the keys the record reader gives, on random files", async () => {
    const storage = new LocalStorage(dir);
    // A seeded generator: the same files on every run.
    let seed = 42;
    const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const plain = (i: number) => pick([`p${i}@x.test`, `P${i}@X.Test`, ` p${i}@x.test `, `\tp${i}@x.test`, `ext-${i}`, `Ext ${i}`]);
    const other = (i: number) =>
      pick([`r\u00e9my${i}@x.test`, `re\u0301my${i}@x.test`, `a${i}@xn--bcher-kva.test`, `a${i}@b\u00fccher.test`, `'=p${i}@x.test`, `'-p${i}@x.test`, `p${i}@x.test\u00a0`, "not an email", "", `ΟΔΥΣΣΕΑΣ${i}@x.test`]);
    const ends = ["\n", "\r\n", "\r"];
    const files: { name: string; csv: string; index: number }[] = [];
    for (let f = 0; f < 6; f++) {
      const index = f % 3;
      let csv = "a,b,c\n";
      for (let r = 0; r < 12_000; r++) {
        const n = Math.floor(random() * 3_000);
        const cells = ["x", "y", "z"].map((c) => `${c}${r}`);
        cells[index] = random() < 0.85 ? plain(n) : other(n);
        // Some rows are ragged (no identifier cell), some lines empty; from file 3 on, a quoted cell with a line break
        // appears late in the file (the record reader reads on from its line).
        const line = random() < 0.02 ? cells.slice(0, index).join(",") : cells.join(",");
        csv += (random() < 0.02 ? pick(ends) : "") + line + pick(ends);
        if (f >= 3 && r === 9_000) csv += `"q,\n${n}",p${n}@x.test,"z\r\nz"\n`;
      }
      if (f % 2 === 1) csv = csv.replace(/[\r\n]+$/, "");
      files.push({ name: `random-${f}.csv`, csv, index });
    }
    const bitsOf = (sketch: KeySketch) => Array.from(sketch);
    for (const { name, csv, index } of files) {
      writeFileSync(path.join(dir, name), csv);
      const file = { storageKey: name, delimiter: ",", sizeBytes: Buffer.byteLength(csv) };
      const from = { byte: 6, row: 0, line: 1 };
      for (const identifier of ["email", "external_id"] as const) {
        const fast = await sketchFileKeys(storage, file, from, index, identifier);
        expect(sketchComplete(fast)).toBe(true);
        const exact = newKeySketch(file.sizeBytes);
        expect(await sketchRecords(storage, file, from, index, identifier, exact)).toBe(true);
        // Every key the records hold is in the fast sketch; it may hold more (the keys of rows that fail), never fewer.
        const [a, b] = [bitsOf(fast), bitsOf(exact)];
        expect(b.every((word, i) => (word & a[i]!) >>> 0 === word >>> 0), `${name} ${identifier}`).toBe(true);
      }
    }
    // A file of valid addresses only (mixed case, spaces around, CRLF, empty lines): the very same sketch, bit for bit.
    const clean = "email\r\n" + Array.from({ length: 20_000 }, (_, i) => (i % 9 === 0 ? "\r\n" : "") + (i % 2 ? ` P${i % 7_000}@X.test ` : `p${i % 7_000}@x.test`)).join("\r\n");
    writeFileSync(path.join(dir, "clean.csv"), clean);
    const file = { storageKey: "clean.csv", delimiter: ",", sizeBytes: clean.length };
    const exact = newKeySketch(file.sizeBytes);
    await sketchRecords(storage, file, { byte: 7, row: 0, line: 1 }, 0, "email", exact);
    expect(bitsOf(await sketchFileKeys(storage, file, { byte: 7, row: 0, line: 1 }, 0, "email"))).toEqual(bitsOf(exact));
  });

  it("hands a line longer than 1 MiB to the record reader and counts the keys after it", async () => {
    const storage = new LocalStorage(dir);
    const csv = `email,note\nfirst@x.test,a\nlong@x.test,${"n".repeat(3 * 1024 * 1024)}\nafter@x.test,b\nAFTER@x.test,c\n`;
    writeFileSync(path.join(dir, "long.csv"), csv);
    const sketch = await sketchFileKeys(storage, { storageKey: "long.csv", delimiter: ",", sizeBytes: csv.length }, { byte: 11, row: 0, line: 1 }, 0, "email");
    expect(mayRepeat(sketch, "after@x.test")).toBe(true);
    expect(mayRepeat(sketch, "first@x.test")).toBe(false);
  });

  it("estimates a file's rows from its sample rows (what decides whether a workspace has people enough to sketch)", () => {
    // Sample rows of 11 and 9 bytes with their delimiters and line ends: 10 bytes a row.
    expect(estimateRows(1_000_000, [["a@x.io", "Ann"], ["b@x.io", "B"]], ",")).toBe(100_000);
    expect(estimateRows(1_000, [], ",")).toBe(10);
    expect(estimateRows(-5, [["a"]], ",")).toBe(0);
  });
});
