import { z } from "zod";
import type { AttributeDetail, AttributeView } from "../../domain/attribute-definitions/service.js";
import { ATTRIBUTE_TYPES } from "../../domain/imports/mapping.js";
import type { SameKeys } from "./common.js";

export const attributeSchema = z.object({
  key: z.string(),
  type: z.enum(ATTRIBUTE_TYPES).nullable().describe("the declared type; null when the key was never declared (imports store its cells as strings unless options.attributeTypes says otherwise)"),
  peopleCount: z.number().int().describe("people holding a value under the key"),
  updatedAt: z.string().nullable().describe("ISO-8601 UTC: when the type was last declared; null when never"),
});
const _attribute: SameKeys<z.output<typeof attributeSchema>, AttributeView> = true;

export const checkSchema = z
  .object({
    id: z.string(),
    status: z.enum(["queued", "running", "done", "failed"]),
    checked: z.number().int().nullable().describe("values looked at"),
    mismatched: z.number().int().nullable().describe("values that do not fit the type (they are kept as they are)"),
    sample: z.array(z.object({ personId: z.string(), value: z.unknown() })).describe("up to 20 values that do not fit, lowest person id first"),
    failureReason: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .describe("the latest check of stored values against the type; null when no check was needed");

export const attributeDetailSchema = attributeSchema.extend({ check: checkSchema.nullable() });
const _detail: SameKeys<z.output<typeof attributeDetailSchema>, AttributeDetail> = true;

export const putAttributeBody = z.object({ type: z.enum(ATTRIBUTE_TYPES) }).strict();
