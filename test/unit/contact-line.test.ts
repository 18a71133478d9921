import { describe, expect, it } from "vitest";
import { addRecord, newBatch } from "../../src/domain/imports/batch-builder.js";
import { contactsHandler } from "../../src/domain/imports/contacts/handler.js";
import { compileContactRows, type ContactRow } from "../../src/domain/imports/contacts/validate.js";
import type { RowHandler } from "../../src/domain/imports/handler.js";
import { importOptionsSchema } from "../../src/domain/imports/mapping.js";
import type { ParsedRecord } from "../../src/domain/imports/reader.js";
import type { Identifier, MappingTarget } from "../../src/domain/imports/targets.js";
import { restoreCell } from "../../src/lib/spreadsheet-safe.js";

/**
 * The contacts validator's plain-line path (ContactValidator.line) against validate, on random lines: whenever the
 * line path gives a row, validate gives the same row for the same record (its cells, key, label cell and set
 * fields), and a batch built with it is byte for byte the batch built without it, errors and all.
 */

/** A small seeded generator, so that a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

type R = () => number;
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Mostly what validate accepts, with every kind of trouble mixed in now and then. */
const ODD = [" ", "  ", "'", "'=", "=", "\\", '"', "\t", "é", "İ", "\u200b", "\u0000", "\u007f", ":", "::", ",", "@", ".", "xn--", "XN--", ";", "<", "[", "(", "-", "+"];
function word(r: R, max = 8): string {
  let s = "";
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += r() < 0.06 ? pick(r, ODD) : pick(r, ["a", "b", "Z", "x", "n", "0", "7", "_", ".", "-"]);
  return s;
}
function emailCell(r: R): string {
  const roll = r();
  if (roll < 0.05) return "";
  if (roll < 0.1) return word(r);
  if (roll < 0.15) return `${word(r)}@${word(r)}`;
  const local = r() < 0.1 ? pick(r, ["xn--abc", "a.xn--b", "A", "a b", "a'b", "a+b", "o'neil"]) : `${word(r, 4)}a${word(r, 4)}`;
  const domain = r() < 0.1 ? pick(r, ["xn--bcher-kva.example", "x.XN--p1ai", "a.", ".a", "a..b", "ex ample.com", "b.c"]) : `${word(r, 3)}x.${pick(r, ["com", "io", "C"])}`;
  return `${r() < 0.1 ? " " : ""}${r() < 0.2 ? local.toUpperCase() : local}@${domain}${r() < 0.1 ? " " : ""}`;
}
function labelsCell(r: R): string {
  const n = Math.floor(r() * 5);
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push(r() < 0.1 ? word(r) : pick(r, ["vip", "beta", "lead", " vip", "beta ", "", "VIP"]));
  if (r() < 0.02) return Array.from({ length: 101 }, (_, i) => `l${i}`).join(":");
  if (r() < 0.02) return "x".repeat(256);
  return names.join(":");
}
function cellFor(r: R, target: string): string {
  if (target === "email") return emailCell(r);
  if (target === "labels") return labelsCell(r);
  if (target === "label_ids") return r() < 0.7 ? pick(r, ["", "1", "12:3", "3:3", " 4 ", "0", "x", "1::2"]) : word(r);
  if (target === "attribute:score") return pick(r, ["", "12", "-3.5", "1e3", "abc", " 7 ", "0x10", "1,5"]);
  if (target === "attribute:active") return pick(r, ["", "true", "false", "yes", "no", "1", "maybe", " TRUE "]);
  if (target === "attribute:signed_up") return pick(r, ["", "2024-03-12", "2024-13-40", "12/03/2024", "2024-03-12T10:00:00Z", "soon"]);
  if (r() < 0.01) return "y".repeat(1001);
  return r() < 0.15 ? "" : word(r, 12);
}

const TARGETS: MappingTarget[] = ["email", "external_id", "username", "first_name", "last_name", "name", "company_id", "labels", "label_ids", "attribute:plan", "attribute:score", "attribute:active", "attribute:signed_up", "attribute:city", "ignore"] as MappingTarget[];

interface Shape {
  headers: string[];
  mapping: Record<string, MappingTarget>;
  identifier: Identifier;
  delimiter: string;
}
function shape(r: R): Shape {
  const identifier = pick(r, ["email", "email", "external_id", "username"] as Identifier[]);
  const chosen = new Set<MappingTarget>([identifier as MappingTarget]);
  for (const t of TARGETS) if (r() < 0.5) chosen.add(t);
  const targets = [...chosen].sort(() => r() - 0.5);
  const headers = targets.map((t, i) => `h${i}_${t.replace(/\W/g, "_")}`);
  return { headers, mapping: Object.fromEntries(headers.map((h, i) => [h, targets[i]!])), identifier, delimiter: pick(r, [",", ",", ";", "\t", "|"]) };
}
function lineOf(r: R, s: Shape): string {
  const cells = s.headers.map((h) => cellFor(r, s.mapping[h]!));
  if (r() < 0.03) cells.push("extra");
  if (r() < 0.03) cells.pop();
  if (r() < 0.02) return cells.map(() => " ").join(s.delimiter);
  return cells.join(s.delimiter);
}
const options = (r: R) =>
  importOptionsSchema.parse({ attributeTypes: r() < 0.7 ? { score: "number", active: "boolean", signed_up: "date" } : {} });

/** What the scan gives for a quote-free line: its cells split on the delimiter and restored, and its text. */
const recordOf = (raw: string, delimiter: string, row: number): ParsedRecord => ({
  record: raw.split(delimiter).map(restoreCell),
  row,
  endByte: 0,
  endLine: row + 1,
  raw,
  plain: !/[\\\n\r]/.test(raw) && (delimiter === "\t" || !raw.includes("\t")),
});

describe("contacts: the plain-line path (ContactValidator.line)", () => {
  it("gives exactly validate's row whenever it gives one, on 40 random mappings × 500 random lines", () => {
    let taken = 0;
    let valid = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const s = shape(r);
      const opts = options(r);
      const v = compileContactRows(s.headers, s.mapping, s.identifier, opts);
      for (let i = 0; i < 500; i++) {
        const raw = lineOf(r, s);
        const rec = recordOf(raw, s.delimiter, i + 1);
        if (!rec.plain) continue;
        const fast = v.line(raw, rec.row, s.delimiter.charCodeAt(0));
        const slow = v.validate(rec.record, rec.row, raw, rec.plain);
        // A valid row of printable ASCII (no quote, backslash or leading apostrophe): the line path's to take.
        if (slow.ok && /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(raw.replaceAll(s.delimiter, "")) && !rec.record.some((c) => c.startsWith("'"))) valid++;
        if (fast === null) continue;
        taken++;
        const what = JSON.stringify({ seed, raw, mapping: s.mapping, identifier: s.identifier });
        expect(slow.ok, what).toBe(true);
        const want = (slow as { staged: ContactRow }).staged;
        const out = Buffer.alloc(fast.lineCells!.bytes);
        const end = fast.lineCells!.write(fast.row, out, 0);
        expect(out.toString("latin1", 0, end), what).toBe(`${want.cells}\n`);
        expect({ key: fast.key, labelCell: fast.labelCell, setFields: fast.setFields, row: fast.row }, what).toEqual({ key: want.key, labelCell: want.labelCell, setFields: want.setFields, row: want.row });
      }
    }
    // A row whose line was read over cannot be written.
    const v = compileContactRows(["email"], { email: "email" }, "email", importOptionsSchema.parse({}));
    const first = v.line("a@x.io", 1, 44)!;
    v.line("b@x.io", 2, 44);
    expect(() => first.lineCells!.write(first.row, Buffer.alloc(first.lineCells!.bytes), 0)).toThrow(/read over/);
    // The path takes nearly every valid ASCII line (it leaves a few odd ones to validate, such as an IDNA domain), or
    // this test would prove little.
    expect(valid).toBeGreaterThan(3000);
    expect(taken).toBeGreaterThan(valid * 0.9);
  });

  it("builds byte for byte the batches validate builds, errors, skips and duplicates included", () => {
    for (let seed = 100; seed < 130; seed++) {
      const r = rng(seed);
      const s = shape(r);
      const opts = options(r);
      const ctx = { workspaceId: "w", importId: "i", identifier: s.identifier, options: opts, headerOf: {}, createdSegmentId: null, dryRun: false };
      const records: ParsedRecord[] = [];
      const keys: string[] = [];
      for (let i = 0; i < 400; i++) {
        // Some lines again (the same person later in the file): the later one supersedes the earlier.
        const raw = r() < 0.15 && keys.length ? pick(r, keys) : lineOf(r, s);
        keys.push(raw);
        records.push(recordOf(raw, s.delimiter, i + 1));
      }
      const build = (withLine: boolean) => {
        const handler = contactsHandler(ctx, s.headers, s.mapping) as RowHandler;
        const batch = newBatch({ byte: 0, row: 0, line: 1 });
        const seen = new Map<string, number>();
        for (const rec of records) addRecord(batch, seen, { ...rec, record: [...rec.record] }, handler, s.headers[0]!, undefined, 400, withLine ? s.delimiter.charCodeAt(0) : -1);
        const encoded = batch.encoder?.finish();
        return { copy: encoded ? Buffer.from(encoded.copy).toString("utf8") : "", encoded: { ...encoded, copy: undefined }, errors: batch.errors, failed: batch.failed, skipped: batch.skipped, records: [...batch.records] };
      };
      expect(build(true), `seed ${seed}`).toEqual(build(false));
    }
  });
});
