import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { OversizedRecordFinder, UnclosedQuote } from "../../src/domain/imports/record-skip.js";

const COMMA = 0x2c;

/** Record ends as the import's parser sees them (same options as the reader). */
function parserEnds(text: string): number[] {
  const out = parse(text, { delimiter: ",", record_delimiter: ["\r\n", "\n", "\r"], relax_column_count: true, relax_quotes: true, skip_empty_lines: true, info: true, bom: false }) as unknown as { info: { bytes: number } }[];
  return out.map((r) => r.info.bytes);
}

/** Record ends as the finder sees them: with a limit of 0 every record is "too large", so it stops at each one. */
function finderEnds(buf: Buffer, chunk: number): number[] {
  const ends: number[] = [];
  let at = 0;
  let line = 0;
  while (at < buf.length) {
    const f = new OversizedRecordFinder(COMMA, 0, { byte: at, line });
    let found = null;
    for (let i = at; i < buf.length && !found; i += chunk) found = f.push(buf.subarray(i, Math.min(buf.length, i + chunk)));
    found ??= f.end();
    if (!found) break;
    ends.push(found.endByte);
    at = found.endByte;
    line = found.endLine;
  }
  return ends;
}

describe("OversizedRecordFinder: record boundaries exactly where the parser puts them", () => {
  const text = [
    'a,b\r\n',
    '"quoted, with comma","and ""escaped"" quotes"\n',
    '\n\r\n',
    '"line one\nline two\r\nline three",x\r',
    'mid"quote,is "literal"\n',
    '"closed"then text,y\n',
    '"",""\n',
    ',\n',
    'last,"ends at EOF"',
  ].join("");

  it.each([1, 2, 3, 7, 64, 4096])("in chunks of %i bytes", (chunk) => {
    expect(finderEnds(Buffer.from(text), chunk)).toEqual(parserEnds(text));
  });

  it("reports where the record starts and ends, its size and its first bytes", () => {
    const buf = Buffer.from(`ok,1\n\n"${"x\n".repeat(10)}",2\r\nnext,3\n`);
    const f = new OversizedRecordFinder(COMMA, 10, { byte: 0, line: 1 });
    const found = f.push(buf);
    expect(found).toEqual({
      startByte: 6,
      endByte: buf.indexOf("next"),
      startLine: 4,
      endLine: 14,
      sizeBytes: buf.indexOf("next") - 2 - 6,
      head: `"${"x\n".repeat(10)}",2`,
    });
  });

  it("a quote still open at the end of the file → UnclosedQuote naming the record's first line", () => {
    const f = new OversizedRecordFinder(COMMA, 4, { byte: 0, line: 1 });
    expect(f.push(Buffer.from('a,1\n\nb,"never closed\nmore\n'))).toBeNull();
    expect(() => f.end()).toThrow(UnclosedQuote);
    try {
      f.end();
    } catch (err) {
      expect((err as UnclosedQuote).line).toBe(4);
    }
  });

  it("holds none of the record: 64 MiB of one quoted cell leave it no bigger than its 1 KiB head", () => {
    const f = new OversizedRecordFinder(COMMA, 1024, { byte: 0, line: 1 });
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    expect(f.push(Buffer.from('big,"'))).toBeNull();
    for (let i = 0; i < 64; i++) expect(f.push(chunk)).toBeNull();
    const retained = Object.values(f).reduce((n: number, v: unknown) => n + (Buffer.isBuffer(v) || typeof v === "string" ? v.length : Array.isArray(v) ? v.length : 0), 0);
    expect(retained).toBeLessThanOrEqual(1024);
    const found = f.push(Buffer.from('"\nnext,1\n'));
    expect(found).toMatchObject({ startByte: 0, sizeBytes: 5 + 64 * 1024 * 1024 + 1, startLine: 2, endLine: 2 });
    expect(found?.head).toBe(`big,"${"a".repeat(1019)}`);
  });
});
