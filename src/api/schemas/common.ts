import type { Readable } from "node:stream";
import { z } from "zod";
import { DEFAULT_LIMIT, MAX_LIMIT } from "../../lib/cursor.js";

/** The error envelope every failing request answers with (see API.md). */
export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  requestId: z.string(),
});

const ERROR_DESCRIPTIONS = {
  400: "The request is malformed (e.g. invalid JSON)",
  401: "Missing or invalid credentials",
  404: "Not found (including another workspace's resource)",
  408: "The request body stopped arriving",
  409: "Conflict with the resource's current state",
  413: "The body is larger than the limit",
  415: "Unsupported content type",
  422: "Invalid request; `details.problems` lists each field and reason",
  429: "Rate limit for the workspace exceeded; retry after `Retry-After` seconds",
  503: "A dependency (database or queue) is unavailable; retry shortly",
  507: "No room to store the upload",
} as const;
export type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/** Declared error responses (`schema.response`) in the error shape, described by their usual meaning. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]): Record<S, typeof errorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, errorSchema.describe(ERROR_DESCRIPTIONS[s])])) as Record<S, typeof errorSchema>;
}

/** A declared error response with a description of its own (e.g. naming the codes a route answers with). */
export const errorResponse = (description: string) => errorSchema.describe(description);

/** A declared response without a body (204). */
export const noContent = (description: string) => z.undefined().describe(description);

/** A body fastify sends as it is (a stream, or text with its content type set): a string to the reader of the spec. */
const sentAsIs = z.custom<Readable | string>().meta({ type: "string" });

/** A declared response that is not JSON (a streamed file, Prometheus text): documented per media type, never serialised. */
export const textResponse = (description: string, ...types: string[]) => ({
  description,
  content: Object.fromEntries(types.map((type) => [type, { schema: sentAsIs }])) as Record<string, { schema: typeof sentAsIs }>,
});

/**
 * An object of strings keyed by data, such as CSV headers. zod's record drops a "__proto__" key on the way out (a
 * column may be called that); this passes the object on as it is, documented as the record it is.
 */
export const keyedStrings = z
  .custom<Record<string, string>>((v) => typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string"))
  .meta({ type: "object", additionalProperties: { type: "string" } });

/** A page of a list: `data` plus the cursor of the next page (null on the last). */
export const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() });

/** `?limit=&cursor=` of every list (API.md "Lists"); query strings carry the limit as text. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
  cursor: z.string().optional(),
});

/** The same two fields in a JSON body (POST …/search), where the limit is a JSON number. */
export const pageBody = z.object({
  limit: z.number().int().min(1).max(MAX_LIMIT).default(DEFAULT_LIMIT),
  cursor: z.string().optional(),
});

/**
 * `true` when a documentation shape and the object a service returns have the same fields and the returned one fits
 * the shape; `never` otherwise, so assigning `true` fails to compile when one of them drifts.
 */
export type SameKeys<Shape, Returned> = [Exclude<keyof Shape, keyof Returned>, Exclude<keyof Returned, keyof Shape>] extends [never, never]
  ? Returned extends Shape
    ? true
    : never
  : never;
