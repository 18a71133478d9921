import { and, eq } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { mappingTemplates, type ImportTemplateUse } from "../../db/schema.js";
import { isUuid } from "../../lib/uuid.js";
import { isUniqueViolation } from "../db-errors.js";
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { newestFirst, newestFirstPage } from "../paging.js";
import { getImport } from "../imports/service.js";
import { mergeMapping, validateMapping, type ImportKind } from "../imports/mapping.js";

/**
 * Saved mappings: column name → target, identifier and options, kept under a name (unique per workspace and kind)
 * and laid over a new file's suggestion by `template` on POST /v1/imports. A template is checked as the mapping of a
 * file whose headers are the template's own columns, so it can never hold what an import would refuse.
 */

export type TemplateRow = typeof mappingTemplates.$inferSelect;

export function templateView(row: TemplateRow) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    identifier: row.identifier,
    mapping: row.mapping,
    options: row.options,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
export type TemplateView = ReturnType<typeof templateView>;

export interface TemplateFields {
  name: string;
  kind: ImportKind;
  identifier: string;
  mapping: Record<string, string>;
  options?: unknown;
}

/** Checks a template as a whole; returns what is stored (targets and options in their canonical form). */
function checked(f: TemplateFields) {
  const byKey = new Map<string, string>();
  const problems: { field: string; reason: string }[] = [];
  for (const column of Object.keys(f.mapping)) {
    const key = matchKey(column);
    const earlier = byKey.get(key);
    if (earlier !== undefined) problems.push({ field: `mapping.${column}`, reason: `Columns are matched ignoring case and spaces around them: "${column}" and "${earlier}" are the same column.` });
    byKey.set(key, column);
  }
  if (problems.length) throw new ValidationError("invalid_mapping", "The template names a column twice.", { problems });
  const v = validateMapping({ kind: f.kind, headers: Object.keys(f.mapping), identifier: f.identifier, mapping: f.mapping, options: f.options ?? {} });
  return { name: f.name, kind: f.kind, identifier: v.identifier, mapping: v.mapping as Record<string, string>, options: optionsOfKind(f.kind, v.options) };
}

/** Options as stored: validated, with defaults, minus the events-only ones a contacts or members import refuses. */
function optionsOfKind(kind: ImportKind, options: unknown): Record<string, unknown> {
  const o = { ...(options as Record<string, unknown>) };
  if (kind !== "events") {
    delete o.createMissingPeople;
    delete o.timezone;
  }
  return o;
}

/** How a file's header and a template's column are compared: case-insensitively, surrounding spaces ignored. */
const matchKey = (column: string) => column.trim().toLowerCase();

function nameTaken(err: unknown, name: string, kind: string): never {
  if (isUniqueViolation(err)) throw new ConflictError("template_name_taken", `A ${kind} mapping template named "${name}" already exists.`, { name, kind });
  throw err;
}

export async function createTemplate(db: Db, workspaceId: string, f: TemplateFields): Promise<TemplateRow> {
  const values = checked(f);
  const [row] = await db
    .insert(mappingTemplates)
    .values({ workspaceId, ...values })
    .returning()
    .catch((err: unknown) => nameTaken(err, f.name, f.kind));
  return row!;
}

/** A template from an import's current mapping (it must have one: set with the upload or PUT …/mapping). */
export async function createTemplateFromImport(db: Db, workspaceId: string, name: string, importId: string): Promise<TemplateRow> {
  const imp = await getImport(db, workspaceId, importId).catch((err: unknown) => {
    if (err instanceof NotFoundError) throw new ValidationError("import_not_found", "No import of this workspace has that importId.");
    throw err;
  });
  if (!imp.mapping || !imp.identifier) {
    throw new ValidationError("import_not_mapped", "The import has no mapping yet: set it (PUT /v1/imports/:id/mapping) before saving it as a template.");
  }
  return createTemplate(db, workspaceId, { name, kind: imp.kind, identifier: imp.identifier, mapping: imp.mapping, options: optionsOfKind(imp.kind, imp.options) });
}

export async function getTemplate(db: Db, workspaceId: string, id: string): Promise<TemplateRow> {
  if (!isUuid(id)) throw new NotFoundError("Mapping template");
  const [row] = await db.select().from(mappingTemplates).where(and(eq(mappingTemplates.id, id), eq(mappingTemplates.workspaceId, workspaceId)));
  if (!row) throw new NotFoundError("Mapping template");
  return row;
}

/** Replaces the fields given; the others keep their value, and the result is checked as a whole. */
export async function updateTemplate(db: Db, workspaceId: string, id: string, changes: Partial<TemplateFields>): Promise<TemplateRow> {
  const cur = await getTemplate(db, workspaceId, id);
  const next = { name: cur.name, kind: cur.kind, identifier: cur.identifier, mapping: cur.mapping, options: cur.options, ...stripUndefined(changes) };
  const values = checked(next);
  const [row] = await db
    .update(mappingTemplates)
    .set({ ...values, updatedAt: new Date() })
    .where(and(eq(mappingTemplates.id, id), eq(mappingTemplates.workspaceId, workspaceId)))
    .returning()
    .catch((err: unknown) => nameTaken(err, next.name, next.kind));
  if (!row) throw new NotFoundError("Mapping template");
  return row;
}

export async function deleteTemplate(db: Db, workspaceId: string, id: string): Promise<void> {
  if (!isUuid(id)) throw new NotFoundError("Mapping template");
  const gone = await db
    .delete(mappingTemplates)
    .where(and(eq(mappingTemplates.id, id), eq(mappingTemplates.workspaceId, workspaceId)))
    .returning({ id: mappingTemplates.id });
  if (gone.length === 0) throw new NotFoundError("Mapping template");
}

/** Templates newest first, optionally of one kind. */
export async function listTemplates(db: Db, workspaceId: string, q: { kind?: ImportKind; limit: number; cursor?: string }) {
  const conds = [eq(mappingTemplates.workspaceId, workspaceId)];
  if (q.kind) conds.push(eq(mappingTemplates.kind, q.kind));
  const { after, orderBy } = newestFirst(mappingTemplates, q.cursor);
  if (after) conds.push(after);
  const rows = await db
    .select()
    .from(mappingTemplates)
    .where(and(...conds))
    .orderBy(...orderBy)
    .limit(q.limit + 1);
  return newestFirstPage(rows, q.limit, templateView);
}

/**
 * The template `ref` (an id, else a name) names for a new import. `kind`: the kind the request gave, if it gave one;
 * without it a name several kinds share picks the contacts template (else 422 template_ambiguous). Unknown → 422
 * template_not_found.
 */
export async function resolveTemplate(db: Db, workspaceId: string, ref: string, kind: ImportKind | undefined): Promise<TemplateRow> {
  const byId = isUuid(ref) ? await db.select().from(mappingTemplates).where(and(eq(mappingTemplates.id, ref), eq(mappingTemplates.workspaceId, workspaceId))) : [];
  const found = byId.length
    ? byId
    : await db
        .select()
        .from(mappingTemplates)
        .where(and(eq(mappingTemplates.workspaceId, workspaceId), eq(mappingTemplates.name, ref), kind ? eq(mappingTemplates.kind, kind) : undefined));
  if (found.length === 0) {
    throw new ValidationError("template_not_found", `No mapping template${kind ? ` of kind ${kind}` : ""} has the id or name "${ref}" (GET /v1/mapping-templates lists them).`);
  }
  // Without a kind, a name several kinds share means the default kind's template, as a request without kind means contacts.
  const tpl = found.length === 1 ? found[0]! : found.find((f) => f.kind === "contacts");
  if (!tpl) {
    throw new ValidationError("template_ambiguous", `Mapping templates of several kinds are named "${ref}": send the import's kind, or the template's id.`);
  }
  if (kind && tpl.kind !== kind) {
    throw new ValidationError("template_kind_mismatch", `Mapping template "${tpl.name}" is for ${tpl.kind} imports, not ${kind}.`);
  }
  return tpl;
}

/**
 * Lays a template over a file's suggestion: each header the template knows (case-insensitively) takes its target;
 * the others keep their suggestion and are listed as `unmatched`. A target the template gives to one column leaves
 * another column suggested for it ignored (mergeMapping).
 */
export function applyTemplate(headers: string[], suggested: Record<string, string>, tpl: TemplateRow): { mapping: Record<string, string>; use: ImportTemplateUse } {
  const targetOf = new Map(Object.entries(tpl.mapping).map(([column, target]) => [matchKey(column), target]));
  const partial = new Map<string, string>();
  const unmatched: string[] = [];
  for (const header of headers) {
    const target = targetOf.get(matchKey(header));
    if (target === undefined) unmatched.push(header);
    else partial.set(header, target);
  }
  return { mapping: mergeMapping(headers, suggested, Object.fromEntries(partial)), use: { id: tpl.id, name: tpl.name, unmatched } };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
