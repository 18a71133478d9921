import { z } from "zod";

/** The error envelope every failing request answers with (see API.md). */
export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  requestId: z.string(),
});

/** A page of a list: `data` plus the cursor of the next page (null on the last). */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/**
 * `true` when a documentation shape and the object a service returns have the same fields and the returned one fits
 * the shape; `never` otherwise, so assigning `true` fails to compile when one of them drifts.
 */
export type SameKeys<Shape, Returned> = [Exclude<keyof Shape, keyof Returned>, Exclude<keyof Returned, keyof Shape>] extends [never, never]
  ? Returned extends Shape
    ? true
    : never
  : never;
