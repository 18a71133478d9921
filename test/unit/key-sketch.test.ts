import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { contactRowValidator } from "../../src/domain/imports/contacts/validate.js";
import { addKey, estimateRows, mayRepeat, newKeySketch, sketchFileKeys } from "../../src/domain/imports/key-sketch.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";
import { identifierKey } from "../../src/domain/imports/parts.js";
import { LocalStorage } from "../../src/storage/local.js";

const dir = mkdtempSync(path.join(tmpdir(), "key-sketch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the key sketch", () => {
  it("never shows a repeated key as unique, and shows few unique keys as repeated", () => {
    const keys = Array.from({ length: 60_000 }, (_, i) => `person-${i}@example.test`);
    const repeated = new Set(keys.filter((_, i) => i % 7 === 0));
    // A file of ~60k rows of ~30 bytes: a slot per 2 bytes, so ~6% of unique keys share a slot with another key.
    const sketch = newKeySketch(60_000 * 30);
    for (const k of keys) addKey(sketch, k);
    for (const k of repeated) addKey(sketch, k);
    for (const k of repeated) expect(mayRepeat(sketch, k)).toBe(true);
    const unique = keys.filter((k) => !repeated.has(k));
    const falseRepeats = unique.filter((k) => mayRepeat(sketch, k)).length;
    expect(falseRepeats / unique.length).toBeLessThan(0.08);
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

  it("estimates a file's rows from its sample rows (what decides whether a workspace has people enough to sketch)", () => {
    // Sample rows of 11 and 9 bytes with their delimiters and line ends: 10 bytes a row.
    expect(estimateRows(1_000_000, [["a@x.io", "Ann"], ["b@x.io", "B"]], ",")).toBe(100_000);
    expect(estimateRows(1_000, [], ",")).toBe(10);
    expect(estimateRows(-5, [["a"]], ",")).toBe(0);
  });
});
