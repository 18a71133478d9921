import { Readable } from "node:stream";
import iconv from "iconv-lite";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import { BOM_BYTES, decodeStream, parseRecords, sniffCsv, splitRecords, type SniffResult } from "../../src/domain/imports/sniff.js";

const utf8 = (s: string) => Buffer.from(s, "utf8");
const whole = (buf: Buffer): SniffResult => sniffCsv(buf, { isComplete: true });

function sniffError(buf: Buffer, isComplete = true): ValidationError {
  try {
    sniffCsv(buf, { isComplete });
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error("expected sniffCsv to throw a ValidationError");
}

/** What a reader sees when it starts at headerBytes: the first data row. */
function restAfterHeader(buf: Buffer, result: SniffResult): string {
  return iconv.decode(buf.subarray(result.headerBytes), result.encoding, { stripBOM: false });
}

describe("sniffCsv encodings", () => {
  it("strips a UTF-8 BOM and counts it in headerBytes", () => {
    const buf = Buffer.concat([BOM_BYTES["utf-8"], utf8("email,name\r\na@b.c,Ann\r\n")]);
    const r = whole(buf);
    expect(r).toMatchObject({ encoding: "utf-8", bom: true, bomBytes: 3, delimiter: ",", lineEnding: "crlf" });
    expect(r.headers).toEqual(["email", "name"]);
    expect(r.headers[0]).not.toContain("\ufeff");
    expect(r.headerBytes).toBe(3 + "email,name\r\n".length);
    expect(restAfterHeader(buf, r)).toBe("a@b.c,Ann\r\n");
  });

  it.each(["utf-16le", "utf-16be"] as const)("reads %s with a BOM", (encoding) => {
    const text = "email;name\na@b.c;Zoë\n";
    const buf = Buffer.concat([BOM_BYTES[encoding], iconv.encode(text, encoding)]);
    const r = whole(buf);
    expect(r).toMatchObject({ encoding, bom: true, bomBytes: 2, delimiter: ";", lineEnding: "lf" });
    expect(r.headers).toEqual(["email", "name"]);
    expect(r.sample).toEqual([["a@b.c", "Zoë"]]);
    expect(r.headerBytes).toBe(2 + 2 * "email;name\n".length);
    expect(restAfterHeader(buf, r)).toBe("a@b.c;Zoë\n");
  });

  it("falls back to windows-1252 when the bytes are not UTF-8", () => {
    const buf = iconv.encode("Name;Betrag\nMüller;€5\n", "windows-1252");
    expect(buf.includes(0x80)).toBe(true);
    const r = whole(buf);
    expect(r).toMatchObject({ encoding: "windows-1252", bom: false, bomBytes: 0, delimiter: ";" });
    expect(r.sample).toEqual([["Müller", "€5"]]);
    expect(r.headerBytes).toBe("Name;Betrag\n".length);
  });

  it("reads UTF-8 without a BOM and counts multibyte headers in bytes", () => {
    const buf = utf8("Prénom,Nom\nZoë,Müller\n");
    const r = whole(buf);
    expect(r).toMatchObject({ encoding: "utf-8", bom: false, bomBytes: 0 });
    expect(r.headers).toEqual(["Prénom", "Nom"]);
    expect(r.headerBytes).toBe(Buffer.byteLength("Prénom,Nom\n"));
    expect(restAfterHeader(buf, r)).toBe("Zoë,Müller\n");
  });

  it("still sees UTF-8 when the head cuts a multibyte character in two", () => {
    const full = utf8("name\nMüller\nJosé\n");
    const cut = full.subarray(0, full.indexOf(utf8("é")) + 1); // first byte of "é" only
    const r = sniffCsv(cut, { isComplete: false });
    expect(r.encoding).toBe("utf-8");
    expect(r.sample).toEqual([["Müller"]]);
  });

  it("treats the same cut as windows-1252 when the buffer claims to be the whole file", () => {
    const full = utf8("name\nJosé");
    expect(whole(full.subarray(0, full.length - 1)).encoding).toBe("windows-1252");
  });
});

describe("sniffCsv delimiters", () => {
  it.each([
    [";", "email;name;plan\na@b;Ann;pro\nc@d;Bob;free\n"],
    ["\t", "email\tname\tplan\na@b\tAnn, Jr\tpro\n"],
    ["|", "email|name\na@b|Ann\nc@d|Bob\n"],
    [",", "email,name\na@b,Ann\n"],
  ] as const)("detects %j", (delimiter, text) => {
    const r = whole(utf8(text));
    expect(r.delimiter).toBe(delimiter);
    expect(r.headers).toEqual(text.split("\n")[0]?.split(delimiter));
  });

  it("ignores delimiters inside quotes", () => {
    const r = whole(utf8('"Last, First";"a,b,c";email\n"Smith, J";"1,2,3";a@b\n'));
    expect(r.delimiter).toBe(";");
    expect(r.headers).toEqual(["Last, First", "a,b,c", "email"]);
    expect(r.sample).toEqual([["Smith, J", "1,2,3", "a@b"]]);
  });

  it("prefers the delimiter the header has over decimal commas in the data", () => {
    expect(whole(utf8("name;amount\nfoo;1,5\nbar;2,25\n")).delimiter).toBe(";");
  });

  it("defaults to a comma for a single-column file", () => {
    const r = whole(utf8("email\na@b\nc@d\n"));
    expect(r.delimiter).toBe(",");
    expect(r.headers).toEqual(["email"]);
  });

  it("breaks an even tie in favour of the comma", () => {
    expect(whole(utf8("a,b;c\n1,2;3\n")).delimiter).toBe(",");
  });
});

describe("sniffCsv rows and line endings", () => {
  it("keeps quoted newlines inside the header and sample fields", () => {
    const text = '"Full\nName",email\r\n"Line1\r\nLine2",a@b\r\n';
    const buf = utf8(text);
    const r = whole(buf);
    expect(r.headers).toEqual(["Full\nName", "email"]);
    expect(r.sample).toEqual([["Line1\r\nLine2", "a@b"]]);
    expect(r.lineEnding).toBe("crlf");
    expect(restAfterHeader(buf, r)).toBe('"Line1\r\nLine2",a@b\r\n');
  });

  it.each([
    ["crlf", "a,b\r\n1,2\r\n"],
    ["lf", "a,b\n1,2\n"],
    ["cr", "a,b\r1,2\r"],
    ["mixed", "a,b\r\n1,2\n3,4\r"],
  ] as const)("detects %s line endings", (lineEnding, text) => {
    const r = whole(utf8(text));
    expect(r.lineEnding).toBe(lineEnding);
    expect(r.sample[0]).toEqual(["1", "2"]);
  });

  it("drops the possibly truncated last line unless the head is the whole file", () => {
    const buf = utf8("email,name\na@b,Ann\nc@d,Bo");
    expect(sniffCsv(buf, { isComplete: false }).sample).toEqual([["a@b", "Ann"]]);
    expect(whole(buf).sample).toEqual([
      ["a@b", "Ann"],
      ["c@d", "Bo"],
    ]);
  });

  it("does not count a CRLF cut in two as a lone CR", () => {
    const r = sniffCsv(utf8("email\r\na@b\r\nc@d\r"), { isComplete: false });
    expect(r.lineEnding).toBe("crlf");
    expect(r.sample).toEqual([["a@b"]]);
  });

  it("drops a last line that ends inside an open quote", () => {
    const r = sniffCsv(utf8('email,note\na@b,x\nc@d,"starts here\nand goes on'), { isComplete: false });
    expect(r.sample).toEqual([["a@b", "x"]]);
  });

  it("returns at most five sample rows and skips blank lines", () => {
    const rows = Array.from({ length: 8 }, (_, i) => `u${i}@x.io`);
    const r = whole(utf8(`\nemail\n\n${rows.join("\n")}\n`));
    expect(r.headers).toEqual(["email"]);
    expect(r.sample).toEqual(rows.slice(0, 5).map((e) => [e]));
    expect(r.headerBytes).toBe("\nemail\n".length);
  });

  it("accepts a header-only file", () => {
    const r = whole(utf8("email,name"));
    expect(r).toMatchObject({ headers: ["email", "name"], sample: [], headerBytes: 10, lineEnding: "lf" });
  });

  it("trims padded header names but not sample values", () => {
    const r = whole(utf8(" Email ,\tName\n a@b , Ann\n"));
    expect(r.headers).toEqual(["Email", "Name"]);
    expect(r.sample).toEqual([[" a@b ", " Ann"]]);
  });
});

describe("sniffCsv trailing unnamed columns", () => {
  it("drops empty header cells after the last named one (Email;Name;;) and the blank cells under them", () => {
    const r = whole(utf8("Email;Name;;\r\na@x.io;Ann;;\r\nb@x.io;Bob\r\n"));
    expect(r).toMatchObject({ delimiter: ";", headers: ["Email", "Name"], sample: [["a@x.io", "Ann"], ["b@x.io", "Bob"]] });
    expect(r.headerBytes).toBe("Email;Name;;\r\n".length);
  });

  it("still refuses an unnamed column in the middle, naming it", () => {
    const err = sniffError(utf8("Email;;Name;;\na;;b;;\n"));
    expect(err.code).toBe("empty_header");
    expect(err.details).toEqual({ columns: [2] });
  });

  it("refuses a trailing unnamed column whose sample cells hold data, naming it: nothing in it may be dropped", () => {
    const err = sniffError(utf8("Email,Name,,\na@x.io,Ann,,kept?\n"));
    expect(err.code).toBe("empty_header");
    expect(err.details).toEqual({ columns: [3, 4] });
  });
});

describe("sniffCsv rejections", () => {
  it.each([
    ["an empty buffer", Buffer.alloc(0)],
    ["a BOM alone", BOM_BYTES["utf-8"]],
    ["blank lines", utf8("\r\n\n  \n")],
  ])("rejects %s as empty_file", (_label, buf) => {
    const err = sniffError(buf);
    expect(err.code).toBe("empty_file");
    expect(err.message).toBe("The file is empty: the first row must hold the column names.");
  });

  it("reports empty header names by 1-based position", () => {
    const err = sniffError(utf8("email,,name, \na,b,c,d\n"));
    expect(err.code).toBe("empty_header");
    expect(err.details).toEqual({ columns: [2, 4] });
    expect(err.message).toContain("2 and 4");
  });

  it("reports duplicate header names ignoring case and padding", () => {
    const err = sniffError(utf8("Email,name, email ,NAME,plan\n"));
    expect(err.code).toBe("duplicate_header");
    expect(err.details).toEqual({ headers: ["Email", "name"] });
    expect(err.message).toContain('"Email"');
  });

  it("reports empty and duplicate headers together", () => {
    const err = sniffError(utf8("email,,Email\n"));
    expect(err.code).toBe("invalid_header");
    expect(err.details).toEqual({ columns: [2], headers: ["email"] });
  });

  it.each([
    ["PNG", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d])],
    ["ZIP (xlsx)", Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), utf8("[Content_Types].xml")])],
    ["NUL-heavy data", Buffer.concat([utf8("email\n"), Buffer.alloc(20), utf8("a@b\n")])],
  ])("rejects %s as not_csv", (_label, buf) => {
    const err = sniffError(buf);
    expect(err.code).toBe("not_csv");
    expect(err.message).toBe("The file does not look like CSV text (it looks like binary data).");
  });

  it("says when the file looks like UTF-16 without a BOM", () => {
    const err = sniffError(iconv.encode("email,name\na@b,Ann\n", "utf-16le"));
    expect(err.code).toBe("not_csv");
    expect(err.message).toContain("UTF-16");
  });

  it("rejects a first row that does not end within the head", () => {
    expect(sniffError(utf8("email,name,plan"), false).code).toBe("header_too_long");
  });

  it("rejects malformed quoting", () => {
    const err = sniffError(utf8('email,name\na@b,"Ann\n'));
    expect(err.code).toBe("malformed_csv");
  });
});

describe("the split used for text without quotes", () => {
  // sniffCsv reads quote-free text with splitRecords instead of csv-parse (parseRecords): the two must agree.
  const delimiters = [",", ";", "\t", "|"] as const;

  it("agrees with csv-parse on edge cases", () => {
    const texts = ["", "\n", "\r\n\r\n", "a", "a,b", "a,b\n", "a,b\r\nc,d\re\n\nf", "\n\na;b\r\r\n", ",,\n ,\t|\n", "é,ü\n1\n2\n3\n4\n5\n6\n7\n", "a\n\r"];
    for (const text of texts) for (const d of delimiters) expect(splitRecords(text, d), JSON.stringify(text)).toEqual(parseRecords(text, d));
  });

  it("agrees with csv-parse on random quote-free text", () => {
    const alphabet = ["a", "é", " ", ",", ";", "\t", "|", "\r", "\n", "\r\n", "'", "1"];
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    for (let i = 0; i < 3000; i++) {
      let text = "";
      for (let k = next(80); k > 0; k--) text += alphabet[next(alphabet.length)];
      const d = delimiters[next(delimiters.length)]!;
      expect(splitRecords(text, d), JSON.stringify(text)).toEqual(parseRecords(text, d));
    }
  });
});

describe("decodeStream", () => {
  async function decodeChunks(chunks: Buffer[], encoding: SniffResult["encoding"]): Promise<string> {
    let text = "";
    for await (const chunk of Readable.from(chunks).pipe(decodeStream(encoding))) text += String(chunk);
    return text;
  }

  it("joins a UTF-8 character split across chunks and drops the BOM", async () => {
    const buf = Buffer.concat([BOM_BYTES["utf-8"], utf8("name\nMüller\n")]);
    const at = buf.indexOf(utf8("ü")) + 1;
    expect(await decodeChunks([buf.subarray(0, at), buf.subarray(at)], "utf-8")).toBe("name\nMüller\n");
  });

  it("decodes UTF-16LE split on an odd byte", async () => {
    const buf = Buffer.concat([BOM_BYTES["utf-16le"], iconv.encode("name\nZoë\n", "utf-16le")]);
    expect(await decodeChunks([buf.subarray(0, 5), buf.subarray(5)], "utf-16le")).toBe("name\nZoë\n");
  });

  it("decodes windows-1252", async () => {
    expect(await decodeChunks([Buffer.from([0x80, 0x0a])], "windows-1252")).toBe("€\n");
  });
});
