import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { EncodingScanner, judgeEncoding, type EncodingScan } from "../../src/domain/imports/encoding-scan.js";

/** Scans `buf` fed in chunks cut at the given offsets. */
function scan(buf: Buffer, cuts: number[] = []): EncodingScan {
  const s = new EncodingScanner();
  let at = 0;
  for (const c of [...cuts, buf.length]) {
    s.push(buf.subarray(at, c));
    at = c;
  }
  return s.end();
}

/** Every way of cutting `buf` in two, and into single bytes: the verdict must not depend on chunk boundaries. */
function everyCut(buf: Buffer): EncodingScan[] {
  const two = Array.from({ length: buf.length + 1 }, (_, i) => scan(buf, [i]));
  return [...two, scan(buf, Array.from({ length: buf.length }, (_, i) => i))];
}

describe("EncodingScanner: the whole stream, whatever its chunks", () => {
  it("valid UTF-8 (2-, 3- and 4-byte sequences) is UTF-8 at every chunk boundary", () => {
    const buf = Buffer.from("email,name\nz@x.io,Zoë 日本 😀\n");
    for (const r of everyCut(buf)) {
      expect(r).toMatchObject({ firstInvalid: null, hasMultibyte: true });
      expect(judgeEncoding(r)).toEqual({ encoding: "utf-8" });
    }
  });

  it("UTF-8 with one Latin-1 byte is mixed: refused at that byte, at every chunk boundary", () => {
    const buf = Buffer.concat([Buffer.from("a,日本\nb,Ren"), Buffer.from([0xe9]), Buffer.from("e\n")]);
    const at = buf.indexOf(0xe9);
    for (const r of everyCut(buf)) {
      expect(judgeEncoding(r)).toEqual({ refuse: "mixed", offset: at, bytes: Buffer.from([0xe9]) });
    }
  });

  it("Windows-1252 (no UTF-8 sequence anywhere) is Windows-1252, wherever its first non-ASCII byte is", () => {
    const buf = Buffer.concat([Buffer.from("x,y\n".repeat(50_000)), iconv.encode("München,€\n", "windows-1252")]);
    expect(judgeEncoding(scan(buf, [65_536, 131_072]))).toEqual({ encoding: "windows-1252" });
  });

  it("a byte Windows-1252 leaves undefined is refused, not decoded to U+FFFD", () => {
    const buf = Buffer.from([0x61, 0x2c, 0xfc, 0x8d, 0x0a]);
    for (const r of everyCut(buf)) expect(judgeEncoding(r)).toEqual({ refuse: "undefined_1252", offset: 3, bytes: Buffer.from([0x8d]) });
  });

  it("a sequence cut short by the end of the file is invalid, with the bytes it has", () => {
    const buf = Buffer.concat([Buffer.from("a,日"), Buffer.from([0xe6, 0x9c])]);
    for (const r of everyCut(buf)) expect(judgeEncoding(r)).toEqual({ refuse: "mixed", offset: 5, bytes: Buffer.from([0xe6, 0x9c]) });
  });

  it.each([
    ["an overlong NUL", [0xc0, 0x80]],
    ["a UTF-16 surrogate", [0xed, 0xa0, 0x80]],
    ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
    ["a lone continuation byte", [0x80]],
  ])("%s is not UTF-8", (_name, bytes) => {
    const r = scan(Buffer.concat([Buffer.from("ab"), Buffer.from(bytes), Buffer.from("\n")]));
    expect(r.firstInvalid).toBe(2);
  });

  it("keeps no more than 3 bytes between chunks, however long the stream", () => {
    const s = new EncodingScanner();
    const chunk = Buffer.concat([Buffer.alloc(65_533, 0x61), Buffer.from("日").subarray(0, 2)]);
    for (let i = 0; i < 100; i++) s.push(chunk);
    expect((s as unknown as { carry: Buffer }).carry.length).toBeLessThanOrEqual(3);
  });
});
