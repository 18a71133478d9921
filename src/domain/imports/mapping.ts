/**
 * Mapping CSV columns onto people fields: a suggestion to pre-fill the mapping
 * screen, and the validation of what the client sends back. Validation lists every
 * problem at once so a person can fix the whole mapping in one go.
 */
import { z } from "zod";
import { keepingProto, stringRecordKeepingProto } from "../../lib/json.js";
import { ValidationError } from "../errors.js";
import { ERROR_REPORT_COLUMNS } from "./error-report.js";
import { isPasswordHeader, isSecretHeader } from "./secrets.js";
import {
  IDENTIFIERS,
  IDENTIFIERS_BY_KIND,
  IMPORT_KINDS,
  attributeKey,
  formatTarget,
  isTargetKey,
  normaliseHeader,
  readTarget,
  targetNotAllowed,
  type Identifier,
  type ImportKind,
  type MappingTarget,
  type SimpleTarget,
} from "./targets.js";

export {
  IDENTIFIERS,
  IMPORT_KINDS,
  attributeKey,
  normaliseHeader,
  parseTarget,
  type Identifier,
  type ImportKind,
  type MappingTarget,
  type ParsedTarget,
  type TargetType,
} from "./targets.js";

/** Header spellings (after normaliseHeader) that every kind recognises. */
const COMMON_ALIASES: Record<string, SimpleTarget> = {
  userid: "external_id",
  externalid: "external_id",
  email: "email",
  emailaddress: "email",
  username: "username",
  firstname: "first_name",
  lastname: "last_name",
  name: "name",
  fullname: "name",
  companyid: "company_id",
  labels: "labels",
  label: "labels",
  tags: "labels",
  tag: "labels",
  labelsid: "label_ids",
  labelids: "label_ids",
  labelid: "label_ids",
  tagids: "label_ids",
  tagid: "label_ids",
  segment: "segment",
  segmentname: "segment",
  segmentvalue: "segment_value",
  // Common exports: HubSpot, Google Contacts (old and new CSV), German spreadsheets.
  recordid: "external_id",
  primaryassociatedcompanyid: "company_id",
  givenname: "first_name",
  familyname: "last_name",
  surname: "last_name",
  email1value: "email",
  vorname: "first_name",
  nachname: "last_name",
  familienname: "last_name",
  emailadresse: "email",
  benutzername: "username",
};

const KIND_ALIASES: Record<ImportKind, Record<string, SimpleTarget>> = {
  contacts: {},
  // Password-like headers ("passwd", "Passwort") are recognised by isPasswordHeader.
  members: { active: "active", role: "role" },
  events: {
    event: "event",
    eventname: "event",
    occurredat: "occurred_at",
    timestamp: "occurred_at",
    time: "occurred_at",
    date: "occurred_at",
  },
};

/** Every alias a kind's columns may have, merged once (spreading the two per call cost more than the rest of the suggestion). */
const ALIASES_BY_KIND = Object.fromEntries(
  (Object.keys(KIND_ALIASES) as ImportKind[]).map((kind) => [kind, Object.assign({}, COMMON_ALIASES, KIND_ALIASES[kind])]),
) as Record<ImportKind, Record<string, MappingTarget>>;

/** Where a column nobody recognised goes: contacts keep it as an attribute, events as a property. */
const FALLBACK_PREFIX: Record<ImportKind, "attribute" | "property" | null> = {
  contacts: "attribute",
  members: null,
  events: "property",
};

/** "attributes.plan", as a Roster users export names its attribute columns, maps back to attribute:plan. */
const EXPORTED_ATTRIBUTE = /^attributes\.(.+)$/;

function exportedAttribute(header: string, kind: ImportKind): MappingTarget | null {
  const key = EXPORTED_ATTRIBUTE.exec(header.trim())?.[1];
  return FALLBACK_PREFIX[kind] === "attribute" && key !== undefined && isTargetKey(key) ? `attribute:${key}` : null;
}

/** A header written as a target of this kind ("attribute:plan", "label_ids") maps to that very target. */
function ownTarget(header: string, kind: ImportKind): MappingTarget | null {
  const parsed = readTarget(header);
  if ("error" in parsed || parsed.type === "ignore" || targetNotAllowed(kind, parsed) !== null) return null;
  return formatTarget(parsed);
}

/** Suggestions already made, by kind and header list (bounded; the oldest goes first). */
const suggestions = new Map<string, Record<string, MappingTarget>>();
const SUGGESTIONS_KEPT = 500;
/** A header list longer than this (as JSON) is not kept: thousands of columns are rare and would crowd the others out. */
const SUGGESTION_KEY_MAX = 16_384;

/**
 * A first guess at the mapping; each target is suggested once, the first column winning. Secret-looking columns
 * are never suggested as data of a contacts or events import; a members import takes a password-like one as password.
 *
 * The guess depends on the kind and the header list only, and the same layouts come back (an integration's daily
 * file): it is remembered, and the object returned is frozen, shared by every import with that layout.
 */
export function suggestMapping(headers: string[], kind: ImportKind): Record<string, MappingTarget> {
  const key = `${kind}${JSON.stringify(headers)}`;
  const known = suggestions.get(key);
  if (known) return known;
  const made = Object.freeze(guessMapping(headers, kind)) as Record<string, MappingTarget>;
  if (key.length <= SUGGESTION_KEY_MAX) {
    if (suggestions.size >= SUGGESTIONS_KEPT) suggestions.delete(suggestions.keys().next().value!);
    suggestions.set(key, made);
  }
  return made;
}

function guessMapping(headers: string[], kind: ImportKind): Record<string, MappingTarget> {
  const aliases = ALIASES_BY_KIND[kind];
  const used = new Set<string>();
  // A Map, then fromEntries: a column named "__proto__" or "constructor" is an own key like any other.
  const mapping = new Map<string, MappingTarget>();
  // An error report uploaded again (fixed) starts with the report's own columns: they describe, they are not data.
  const report = ERROR_REPORT_COLUMNS.every((c, i) => headers[i] === c) ? ERROR_REPORT_COLUMNS.length : 0;
  for (const [index, header] of headers.entries()) {
    if (index < report) {
      mapping.set(header, "ignore");
      continue;
    }
    if (kind !== "members" && isSecretHeader(header)) {
      mapping.set(header, "ignore");
      continue;
    }
    const password: MappingTarget | null = kind === "members" && isPasswordHeader(header) ? "password" : null;
    const normalised = normaliseHeader(header);
    const known = Object.hasOwn(aliases, normalised) ? aliases[normalised] : undefined;
    const prefix = FALLBACK_PREFIX[kind];
    const key = attributeKey(header);
    const fallback: MappingTarget | null = prefix && key !== "" ? `${prefix}:${key}` : null;
    const target = [ownTarget(header, kind), exportedAttribute(header, kind), password, known, fallback].find((t) => t !== undefined && t !== null && !used.has(t)) ?? "ignore";
    if (target !== "ignore") used.add(target);
    mapping.set(header, target);
  }
  return Object.fromEntries(mapping);
}

/**
 * A partial mapping laid over `base` (the import's current mapping, else its suggestion): a column the request does
 * not name keeps its target, unless the request gives that target to another column (then it becomes "ignore").
 * Columns the file lacks are kept, so validation names them.
 */
export function mergeMapping(headers: string[], base: Record<string, string>, partial: Record<string, string>): Record<string, string> {
  const claimed = new Set(Object.values(partial).map(canonicalTarget));
  const merged = new Map<string, string>();
  for (const h of headers) {
    if (Object.hasOwn(partial, h)) merged.set(h, partial[h]!);
    else {
      const kept = Object.hasOwn(base, h) ? base[h]! : "ignore";
      merged.set(h, claimed.has(canonicalTarget(kept)) ? "ignore" : kept);
    }
  }
  for (const [h, t] of Object.entries(partial)) if (!merged.has(h)) merged.set(h, t);
  return Object.fromEntries(merged);
}

/** "First_Name " and "first_name" claim the same target; "ignore" claims nothing. */
function canonicalTarget(raw: string): string {
  const parsed = typeof raw === "string" ? readTarget(raw) : { error: "" };
  const t: string = "error" in parsed ? raw : formatTarget(parsed);
  return t === "ignore" ? "" : t;
}

export const ATTRIBUTE_TYPES = ["string", "number", "boolean", "date"] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];
const EVENTS_ONLY_OPTIONS = ["createMissingPeople", "timezone"] as const;

function canonicalTimeZone(tz: string): string | null {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

export const importKindSchema = z.enum(IMPORT_KINDS);
export const identifierSchema = z.enum(IDENTIFIERS);
/** Column name → target, as a client sends it (a column may be called "__proto__"); validateMapping checks the targets. */
export const mappingSchema = stringRecordKeepingProto();
/** What a request may send as `mapping`: a partial mapping (merged, see mergeMapping) or "suggested" to take the suggestion whole. */
export const mappingFieldSchema = keepingProto(z.union([z.literal("suggested"), z.record(z.string(), z.string())]))
  .describe('{"CSV header": "target"}: columns not named keep their current (or suggested) target; "ignore" drops one. "suggested" takes the suggested mapping as it is.');
export type MappingField = z.infer<typeof mappingFieldSchema>;

export const importOptionsSchema = z.strictObject({
  mode: z
    .enum(["upsert", "create_only", "update_only"], { error: 'Use "upsert", "create_only" or "update_only".' })
    .default("upsert"),
  labels: z.enum(["add", "replace"], { error: 'Use "add" or "replace".' }).default("add"),
  createSegment: z.strictObject({ name: z.string().trim().min(1).max(200) }).optional(),
  attributeTypes: z
    .record(z.string(), z.enum(ATTRIBUTE_TYPES, { error: 'Use "string", "number", "boolean" or "date".' }))
    .default({}),
  createMissingPeople: z.boolean().default(false),
  timezone: z
    .string()
    .transform((tz, ctx) => {
      const canonical = canonicalTimeZone(tz);
      if (canonical === null) {
        ctx.addIssue({ code: "custom", message: `"${tz}" is not an IANA time zone such as "Europe/Paris".` });
        return z.NEVER;
      }
      return canonical;
    })
    .default("UTC"),
});
export type ImportOptions = z.output<typeof importOptionsSchema>;

/** The body of a mapping request, before validateMapping checks it against the file's headers. */
export const mappingRequestSchema = z.object({
  identifier: z.string(),
  mapping: mappingFieldSchema
    .optional()
    .describe('{"CSV header": "target"} laid over the current mapping (the suggestion for a draft without one): columns not named keep their target, "ignore" drops one. "suggested" takes the suggestion as it is; omitted, the current mapping stays.'),
  options: z.unknown().optional(),
});

export interface MappingProblem {
  /** Where the problem is: "identifier", "mapping.<column>", "options.<name>". */
  field: string;
  reason: string;
  /** Set for problems a client may branch on: "secret_column". */
  code?: "secret_column";
}

export interface ValidatedMapping {
  identifier: Identifier;
  /** Every header of the file, in file order; unmapped ones as "ignore". */
  mapping: Record<string, MappingTarget>;
  options: ImportOptions;
}

export interface MappingInput {
  kind: ImportKind;
  headers: string[];
  identifier: string;
  mapping: Record<string, string>;
  options: unknown;
}

/** Mappings already resolved, by the request that asked for them (bounded like the suggestions). */
const resolved = new Map<string, ValidatedMapping>();

/**
 * The mapping a new import asks for without a template: `mapping` laid over the suggestion ("suggested": the
 * suggestion itself), then validated (a ValidationError otherwise, never remembered). Like the suggestion it depends on
 * the request alone, and an integration sends the same one with every file: a valid result is remembered, frozen.
 */
export function resolveRequestedMapping(kind: ImportKind, headers: string[], identifier: string, mapping: MappingField | undefined, options: unknown): ValidatedMapping {
  const key = JSON.stringify([kind, headers, identifier, mapping ?? null, options ?? null]);
  const known = resolved.get(key);
  if (known) return known;
  const suggested = suggestMapping(headers, kind);
  const made = deepFreeze(
    validateMapping({ kind, headers, identifier, mapping: mapping === "suggested" ? suggested : mergeMapping(headers, suggested, mapping ?? {}), options: options ?? {} }),
  );
  if (key.length <= SUGGESTION_KEY_MAX) {
    if (resolved.size >= SUGGESTIONS_KEPT) resolved.delete(resolved.keys().next().value!);
    resolved.set(key, made);
  }
  return made;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function validateMapping(input: MappingInput): ValidatedMapping {
  const problems: MappingProblem[] = [];
  const mapping = checkTargets(input, problems);
  const identifier = checkIdentifier(input, mapping, problems);
  const options = checkOptions(input, mapping, problems);
  if (problems.length > 0 || identifier === null || options === null) {
    const n = problems.length;
    const summary = `The mapping has ${n} problem${n === 1 ? "" : "s"}.`;
    // A secret column is the one problem worth its own code: the fix is another kind of import, not another target.
    const secret = problems.find((p) => p.code === "secret_column");
    if (secret) throw new ValidationError("secret_column", `${summary} ${secret.reason}`, { problems });
    throw new ValidationError("invalid_mapping", summary, { problems });
  }
  return { identifier, mapping, options };
}

function checkTargets(input: MappingInput, problems: MappingProblem[]): Record<string, MappingTarget> {
  const headers = new Set(input.headers);
  for (const column of Object.keys(input.mapping)) {
    if (!headers.has(column)) {
      problems.push({ field: `mapping.${column}`, reason: `The file has no column named "${column}".` });
    }
  }

  const mapping = new Map<string, MappingTarget>();
  const columnOf = new Map<MappingTarget, string>();
  for (const column of input.headers) {
    const field = `mapping.${column}`;
    const raw: unknown = Object.hasOwn(input.mapping, column) ? input.mapping[column] : "ignore";
    const parsed = typeof raw === "string" ? readTarget(raw) : { error: "The target must be a string." };
    const rejection = "error" in parsed ? parsed.error : targetNotAllowed(input.kind, parsed);
    if ("error" in parsed || rejection !== null) {
      problems.push({ field, reason: rejection ?? "Unknown target." });
      // Counted as ignored so the checks below do not pile on about the same column.
      mapping.set(column, "ignore");
      continue;
    }
    if (parsed.key !== undefined && (isSecretHeader(column) || isSecretHeader(parsed.key))) {
      problems.push({ field, code: "secret_column", reason: secretReason(input.kind, column) });
      mapping.set(column, "ignore");
      continue;
    }
    const target = formatTarget(parsed);
    const earlier = columnOf.get(target);
    if (earlier !== undefined && target !== "ignore") {
      problems.push({ field, reason: `"${target}" is already mapped from column "${earlier}".` });
    }
    columnOf.set(target, earlier ?? column);
    mapping.set(column, target);
  }

  const targets = new Set(mapping.values());
  const segmentValue = columnOf.get("segment_value");
  if (segmentValue !== undefined && !targets.has("segment")) {
    problems.push({ field: `mapping.${segmentValue}`, reason: '"segment_value" needs a column mapped to "segment".' });
  }
  if (input.kind === "events" && !targets.has("event")) {
    problems.push({ field: "mapping", reason: 'An events import needs a column mapped to "event".' });
  }
  return Object.fromEntries(mapping);
}

function secretReason(kind: ImportKind, column: string): string {
  const store = kind === "events" ? "event properties" : "contact attributes";
  return `Column "${column}" looks like a password, token or key: Roster does not keep secrets as ${store}. Map it to "ignore"; team members' passwords are imported with kind=members, which stores only a hash.`;
}

function checkIdentifier(
  input: MappingInput,
  mapping: Record<string, MappingTarget>,
  problems: MappingProblem[],
): Identifier | null {
  const allowed = IDENTIFIERS_BY_KIND[input.kind];
  const given = typeof input.identifier === "string" ? input.identifier.trim().toLowerCase() : "";
  const identifier = allowed.find((i) => i === given);
  if (identifier === undefined) {
    const list = allowed.map((i) => `"${i}"`).join(", ");
    problems.push({ field: "identifier", reason: `A ${input.kind} import is matched on one of: ${list}.` });
    return null;
  }
  if (!Object.values(mapping).includes(identifier)) {
    problems.push({ field: "identifier", reason: `No column is mapped to "${identifier}", the identifier.` });
  }
  return identifier;
}

function checkOptions(
  input: MappingInput,
  mapping: Record<string, MappingTarget>,
  problems: MappingProblem[],
): ImportOptions | null {
  const raw = input.options ?? {};
  if (input.kind !== "events" && isRecord(raw)) {
    for (const name of EVENTS_ONLY_OPTIONS) {
      if (Object.hasOwn(raw, name)) {
        problems.push({ field: `options.${name}`, reason: "This option is only for events imports." });
      }
    }
  }

  if (input.kind === "members" && isRecord(raw) && Object.hasOwn(raw, "createSegment")) {
    problems.push({ field: "options.createSegment", reason: "Team members are not people: they cannot join a segment." });
  }

  // Checked on the raw input so it is reported even when other options are invalid.
  const attributeTypes: unknown = isRecord(raw) ? raw.attributeTypes : undefined;
  if (isRecord(attributeTypes)) {
    const attributes = new Set(
      Object.values(mapping).flatMap((t) => (t.startsWith("attribute:") ? [t.slice("attribute:".length)] : [])),
    );
    for (const key of Object.keys(attributeTypes)) {
      if (!attributes.has(key)) {
        problems.push({ field: `options.attributeTypes.${key}`, reason: `No column is mapped to "attribute:${key}".` });
      }
    }
  }

  const result = importOptionsSchema.safeParse(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const path = ["options", ...issue.path.map(String)];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) problems.push({ field: [...path, key].join("."), reason: "Unknown option." });
    } else {
      problems.push({ field: path.join("."), reason: issue.message });
    }
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
