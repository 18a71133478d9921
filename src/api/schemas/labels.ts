import { z } from "zod";
import type { LabelView } from "../../domain/labels/service.js";
import { MAX_LABEL_LENGTH } from "../../domain/imports/rows.js";
import type { SameKeys } from "./common.js";

/** The shape of a label (labelView builds it). */
export const labelSchema = z.object({
  id: z.string().describe("numeric id as a string"),
  name: z.string().describe("case-sensitive, unique in the workspace"),
  peopleCount: z.number().int().describe("how many people hold the label"),
  createdAt: z.string().describe("ISO-8601 UTC"),
});
const _label: SameKeys<z.output<typeof labelSchema>, LabelView> = true;

const name = z
  .string()
  .trim()
  .min(1)
  .max(MAX_LABEL_LENGTH)
  .regex(/^[^:"]*$/, "a label name cannot hold : or \" (import cells separate labels with them)")
  .describe('case-sensitive: "VIP" and "vip" are two labels; no : or "');
export const createLabelBody = z.object({ name }).strict();
export const renameLabelBody = z.object({ name }).strict();
export const mergeLabelBody = z
  .object({ into: z.union([z.string(), z.number().int()]).describe("the id of the label people keep") })
  .strict();
