import { z } from "zod";
import { IDENTIFIERS, IMPORT_KINDS } from "../../domain/imports/targets.js";
import { mappingSchema } from "../../domain/imports/mapping.js";
import type { TemplateView } from "../../domain/mapping-templates/service.js";
import { keyedStrings, type SameKeys } from "./common.js";

/** The shape of a saved mapping (templateView builds it). */
export const templateSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(IMPORT_KINDS),
  identifier: z.string().describe("email, external_id or username (members: email)"),
  mapping: keyedStrings.describe('{"CSV header": "target"}; headers are matched case-insensitively'),
  options: z.record(z.string(), z.unknown()).describe("import options, as an import stores them"),
  createdAt: z.string().describe("ISO-8601 UTC"),
  updatedAt: z.string().describe("ISO-8601 UTC"),
});
const _template: SameKeys<z.output<typeof templateSchema>, TemplateView> = true;

const name = z.string().trim().min(1).max(200);
const fields = {
  kind: z.enum(IMPORT_KINDS).optional().describe("default contacts"),
  identifier: z.enum(IDENTIFIERS).optional(),
  mapping: mappingSchema.optional().describe('{"CSV header": "target"}, every target as an import accepts it'),
  options: z.record(z.string(), z.unknown()).optional(),
};

export const createTemplateBody = z
  .object({
    name,
    ...fields,
    importId: z.string().optional().describe("save this import's current kind, identifier, mapping and options instead of giving them"),
  })
  .strict();
export const updateTemplateBody = z.object({ name: name.optional(), ...fields }).strict();
