import { z } from "zod";
import { RESERVED_KEY } from "./target-keys.js";

/**
 * What every path that stores attribute or event property values agrees on (imports, identify, events), so a value
 * one of them stores, the others store too, and one they refuse, all refuse.
 */

/** Longest value in characters: a string's length, or the JSON text of a number, boolean, object or array. */
export const MAX_VALUE_LENGTH = 10_000;

export { RESERVED_KEY } from "./target-keys.js";

export function reservedKeyReason(what: "an attribute" | "a property"): string {
  return `"${RESERVED_KEY}" cannot be ${what} key: JavaScript objects read it as their prototype, not as data. Choose another name.`;
}

function valueLength(v: unknown): number {
  if (typeof v === "string") return v.length;
  try {
    return (JSON.stringify(v) ?? "").length;
  } catch {
    // Nested deeper than JSON.stringify can walk: far beyond the cap anyway.
    return Number.POSITIVE_INFINITY;
  }
}

const valueSchema = z.unknown().superRefine((v, ctx) => {
  const n = valueLength(v);
  if (n > MAX_VALUE_LENGTH) {
    const size = Number.isFinite(n) ? `${n} characters long` : "too deeply nested";
    ctx.addIssue({ code: "custom", message: `The value is ${size}; the limit is ${MAX_VALUE_LENGTH} characters.` });
  }
});

/** Values keyed by name (identify's attributes, an event's properties): each under the cap, "__proto__" refused by name. */
export function keyedValuesSchema(what: "an attribute" | "a property", keySchema: z.ZodType<string> = z.string()) {
  return z
    .preprocess((input, ctx) => {
      if (typeof input === "object" && input !== null && Object.hasOwn(input, RESERVED_KEY)) {
        ctx.addIssue({ code: "custom", path: [RESERVED_KEY], message: reservedKeyReason(what) });
      }
      return input;
    }, z.record(keySchema, valueSchema))
    .describe(
      `Any JSON values by key; each at most ${MAX_VALUE_LENGTH} characters (a string's length, the JSON text of other values). The key "${RESERVED_KEY}" is refused (422).`,
    );
}
