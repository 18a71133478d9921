/**
 * The vocabulary of an import mapping: what a CSV column can be mapped to, per
 * import kind. Kept apart from the validation so the import workers can read a
 * validated mapping without pulling in zod.
 */
import { reservedKeyReason } from "../attributes.js";
import { ValidationError } from "../errors.js";
import { MAX_KEY_LENGTH, RESERVED_KEY, TARGET_KEY_PATTERN } from "../target-keys.js";

// The key rule lives in ../target-keys.ts, which the web console imports too.
export { attributeKey, isTargetKey, TARGET_KEY_PATTERN } from "../target-keys.js";

export const IMPORT_KINDS = ["contacts", "members", "events"] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

export const IDENTIFIERS = ["email", "external_id", "username"] as const;
export type Identifier = (typeof IDENTIFIERS)[number];

/** Targets every kind accepts: they identify or describe the person. */
const COMMON_TARGETS = [
  ...IDENTIFIERS,
  "first_name",
  "last_name",
  "name",
  "company_id",
  "labels",
  "label_ids",
  "segment",
  "segment_value",
  "ignore",
] as const;
const MEMBER_TARGETS = ["password", "active", "role"] as const;
const EVENT_TARGETS = ["event", "occurred_at"] as const;

export type SimpleTarget =
  | (typeof COMMON_TARGETS)[number]
  | (typeof MEMBER_TARGETS)[number]
  | (typeof EVENT_TARGETS)[number];
export type KeyedTargetType = "attribute" | "property";
export type TargetType = SimpleTarget | KeyedTargetType;
export type MappingTarget = SimpleTarget | `${KeyedTargetType}:${string}`;

export interface ParsedTarget {
  type: TargetType;
  /** The attribute or property key, for `attribute:` and `property:` targets. */
  key?: string;
}

const SIMPLE_TARGETS: ReadonlySet<string> = new Set([...COMMON_TARGETS, ...MEMBER_TARGETS, ...EVENT_TARGETS]);

const TARGETS_BY_KIND: Record<ImportKind, { simple: ReadonlySet<string>; keyed: KeyedTargetType | null }> = {
  contacts: { simple: new Set(COMMON_TARGETS), keyed: "attribute" },
  // Team members have a login and a name: no custom attributes, labels, segments or other identities to store.
  members: { simple: new Set(["email", "first_name", "last_name", ...MEMBER_TARGETS, "ignore"]), keyed: null },
  // An event row names its person; it does not edit them (people it creates get the identity columns only).
  events: { simple: new Set([...IDENTIFIERS, ...EVENT_TARGETS, "ignore"]), keyed: "property" },
};

/** Identifiers each kind may match people on: members log in, so only by email. */
export const IDENTIFIERS_BY_KIND: Record<ImportKind, readonly Identifier[]> = {
  contacts: IDENTIFIERS,
  members: ["email"],
  events: IDENTIFIERS,
};

/** Reads a target, tolerating case and surrounding spaces in its name; a reason when it is not one. */
export function readTarget(raw: string): ParsedTarget | { error: string } {
  const t = raw.trim();
  const colon = t.indexOf(":");
  if (colon >= 0) {
    const prefix = t.slice(0, colon).toLowerCase();
    const key = t.slice(colon + 1);
    if (prefix !== "attribute" && prefix !== "property") return { error: `"${raw}" is not a known target.` };
    if (key === RESERVED_KEY) return { error: reservedKeyReason(prefix === "attribute" ? "an attribute" : "a property") };
    if (!TARGET_KEY_PATTERN.test(key)) {
      return {
        error: `"${key}" is not a valid ${prefix} key: use 1 to ${MAX_KEY_LENGTH} letters, digits or underscores.`,
      };
    }
    return { type: prefix, key };
  }
  const simple = t.toLowerCase();
  if (!SIMPLE_TARGETS.has(simple)) return { error: `"${raw}" is not a known target.` };
  return { type: simple as SimpleTarget };
}

/** Parses a target; throws for one that is not in the vocabulary at all. */
export function parseTarget(t: string): ParsedTarget {
  const parsed = readTarget(t);
  if ("error" in parsed) throw new ValidationError("invalid_target", parsed.error, { target: t });
  return parsed;
}

/** Why `target` cannot be used for `kind`, or null when it can. */
export function targetNotAllowed(kind: ImportKind, target: ParsedTarget): string | null {
  const allowed = TARGETS_BY_KIND[kind];
  if (target.type === "attribute" || target.type === "property") {
    if (allowed.keyed === target.type) return null;
    const kinds = target.type === "attribute" ? "contacts" : "events";
    return `"${target.type}:" targets are only for ${kinds} imports, not ${kind}.`;
  }
  if (allowed.simple.has(target.type)) return null;
  const kinds = IMPORT_KINDS.filter((k) => TARGETS_BY_KIND[k].simple.has(target.type)).join(" or ");
  return `"${target.type}" is only for ${kinds} imports, not ${kind}.`;
}

export function formatTarget(target: ParsedTarget): MappingTarget {
  return target.key === undefined ? (target.type as SimpleTarget) : `${target.type as KeyedTargetType}:${target.key}`;
}

/** Lower case with everything but letters and digits removed: "E-mail Address" → "emailaddress". */
export function normaliseHeader(h: string): string {
  return h.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}
