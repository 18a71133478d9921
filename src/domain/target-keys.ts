/**
 * The rule for attribute and property keys, with no imports: the server (imports, the attribute definitions) and the
 * web console (console/src/imports.tsx, which derives and checks the keys a person types) share this one file, so the
 * console never offers a key the API refuses.
 */

/**
 * The one key no attribute or property may have: JavaScript reads `obj.__proto__` as the prototype, so clients (and
 * zod's records, which drop it without a word) could never read such a key back. Refused loudly instead.
 */
export const RESERVED_KEY = "__proto__";

/** Attribute and property keys end up as JSON keys and column labels; keep them tame. */
export const TARGET_KEY_PATTERN = /^[\p{L}\p{N}_]{1,64}$/u;
export const MAX_KEY_LENGTH = 64;

/** A key an `attribute:` or `property:` target may name ("__proto__" matches the pattern but is reserved). */
export function isTargetKey(key: string): boolean {
  return TARGET_KEY_PATTERN.test(key) && key !== RESERVED_KEY;
}

/**
 * A header as an attribute or property key: "Plan Type" → "plan_type". Cut to the
 * key length limit so that long survey-style headers still make a usable key;
 * may be "" for a header without letters or digits.
 */
export function attributeKey(h: string): string {
  const snake = h
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, "_")
    .replace(/^_+|_+$/g, "");
  // Array.from counts code points, as the key pattern does, so a pair is never split.
  return Array.from(snake).slice(0, MAX_KEY_LENGTH).join("").replace(/_+$/, "");
}
