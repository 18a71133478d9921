import { describe, expect, it } from "vitest";
import { emailKey, normaliseEmail } from "../../src/domain/people/email.js";

describe("normaliseEmail", () => {
  it("trims and stores NFC", () => {
    expect(normaliseEmail("  re\u0301my@x.test ")).toBe("r\u00e9my@x.test");
    expect(normaliseEmail("ΟΔΥΣΣΕΑΣ@x.test")).toBe("ΟΔΥΣΣΕΑΣ@x.test");
  });

  it("rejects controls and invisible format characters instead of stripping them", () => {
    for (const e of ["a\u200b@x.test", "a\u200c@x.test", "a\u200d@x.test", "a@x.test\u2060", "a\ufeff@x.test", "a\u00ad@x.test", "a\u200e@x.test", "a\u202e@x.test", "a\u0001@x.test"]) {
      expect(normaliseEmail(e), JSON.stringify(e)).toBeNull();
    }
  });

  it("trims a BOM at either end, as JavaScript's trim does with whitespace", () => {
    expect(normaliseEmail("\ufeffa@x.test\ufeff")).toBe("a@x.test");
  });

  it("takes a leading apostrophe as part of the local part (the import reader already undid any an export added)", () => {
    expect(normaliseEmail("'e@x.test")).toBe("'e@x.test");
    expect(normaliseEmail("'@x.test")).toBe("'@x.test");
    expect(normaliseEmail("@x.test")).toBeNull();
  });
});

describe("emailKey", () => {
  it("is the lower case of a plain ASCII address", () => {
    expect(emailKey("Ada.Lovelace+X@Example.COM")).toBe("ada.lovelace+x@example.com");
    expect(emailKey("  a@x.test ")).toBe("a@x.test");
  });

  it("folds every sigma alike", () => {
    const k = emailKey("ΟΔΥΣΣΕΑΣ@x.test");
    expect(k).toBe("οδυσσεασ@x.test");
    expect(emailKey("οδυσσεας@x.test")).toBe(k);
    expect(emailKey("οδυσσεασ@X.TEST")).toBe(k);
  });

  it("keeps İ apart from I (Unicode's locale-independent mapping: İ is i + U+0307)", () => {
    expect(emailKey("İstanbul@x.test")).toBe("i\u0307stanbul@x.test");
    expect(emailKey("ISTANBUL@x.test")).toBe("istanbul@x.test");
    expect(emailKey("i\u0307stanbul@x.test")).toBe(emailKey("İSTANBUL@x.test"));
  });

  it("is insensitive to composed / decomposed accents", () => {
    expect(emailKey("re\u0301my@x.test")).toBe(emailKey("R\u00c9MY@x.test"));
  });

  it("takes an IDN domain and its punycode as one", () => {
    expect(emailKey("a@bücher.example")).toBe("a@bücher.example");
    expect(emailKey("a@xn--bcher-kva.example")).toBe("a@bücher.example");
    expect(emailKey("A@XN--BCHER-KVA.Example")).toBe("a@bücher.example");
    expect(emailKey("a@BÜCHER.example")).toBe("a@bücher.example");
    // Not a valid IDN: lower case, as any other text.
    expect(emailKey("a@xn--zz.TEST")).toBe("a@xn--zz.test");
  });

  it("keeps ß and ss apart (lower case, not full case folding)", () => {
    expect(emailKey("STRASSE@x.test")).not.toBe(emailKey("straße@x.test"));
  });

  it("is total and idempotent", () => {
    for (const s of ["", "no at sign", "ΟΔΥΣΣΕΑΣ", "@", "a@", "İ@İ", "a@xn--bcher-kva.example", "x@ｘ.test", "ǅ@x.test"]) {
      const k = emailKey(s);
      expect(emailKey(k), JSON.stringify(s)).toBe(k);
    }
  });
});
