import { describe, expect, it } from "vitest";
import { neutraliseCell, restoreCell } from "../../src/lib/spreadsheet-safe.js";

const FORMULAS = ["=1+1", "+44 20", "-Dash", "@SUM(A1)", "\tTab", "\rCR", "\nLF", "\0NUL", "=cmd|' /C calc'!A0"];
const NUMBERS = ["-12.5", "+3", "-0", "-.5", "1e3", "-1E-3", "42"];
const PLAIN = ["", "Ada", "a=b", "'quoted", "''", "'", "1-2", " =lead space"];
const ESCAPED_LOOKING = ["'=already", "''+twice", "'-12.5", "'\tTab"];

describe("neutraliseCell", () => {
  it("prefixes an apostrophe to cells a spreadsheet would run as formulas", () => {
    for (const v of FORMULAS) expect(neutraliseCell(v)).toBe(`'${v}`);
  });

  it("keeps plain numbers such as -12.5 and ordinary text intact", () => {
    for (const v of [...NUMBERS, ...PLAIN]) expect(neutraliseCell(v)).toBe(v);
  });

  it("escapes text that already looks escaped, so the apostrophe the import strips is always one the export added", () => {
    for (const v of ESCAPED_LOOKING) expect(neutraliseCell(v)).toBe(`'${v}`);
  });
});

describe("restoreCell", () => {
  it("undoes neutraliseCell for every kind of value", () => {
    for (const v of [...FORMULAS, ...NUMBERS, ...PLAIN, ...ESCAPED_LOOKING]) expect(restoreCell(neutraliseCell(v))).toBe(v);
  });

  it("leaves an apostrophe that does not precede a formula character alone", () => {
    expect(restoreCell("'quoted")).toBe("'quoted");
    expect(restoreCell("'12")).toBe("'12");
  });
});
