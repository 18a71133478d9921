import type { FastifySchema, FastifySerializerCompiler, RouteOptions } from "fastify";
import { ResponseSerializationError } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses, type ErrorStatus } from "../schemas/common.js";

/** A response carried a field its declared schema lacks: the schema (and so the OpenAPI spec) is behind the code. */
export class UndeclaredFieldsError extends Error {
  constructor(method: string, url: string, readonly paths: string[]) {
    super(`${method} ${url} answered fields its response schema does not declare: ${paths.join(", ")}`);
    this.name = "UndeclaredFieldsError";
  }
}

/** Where `sent` has keys (with a value) that `kept` lost: zod's encode strips undeclared object keys without a word. */
export function droppedPaths(sent: unknown, kept: unknown, path = "$"): string[] {
  if (sent === kept || sent === null || typeof sent !== "object" || kept === null || typeof kept !== "object") return [];
  if (Array.isArray(sent)) return Array.isArray(kept) ? sent.flatMap((item, i) => droppedPaths(item, kept[i], `${path}[${i}]`)) : [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(sent)) {
    if (value === undefined) continue; // JSON has no undefined: nothing is lost
    if (!Object.hasOwn(kept, key)) out.push(`${path}.${key}`);
    else out.push(...droppedPaths(value, (kept as Record<string, unknown>)[key], `${path}.${key}`));
  }
  return out;
}

/**
 * Serialises a response with its declared zod schema (fastify-type-provider-zod's way: encode, then JSON), and refuses
 * one that would lose a field on the way: a field the handler sends but the schema lacks is a bug to see in the tests
 * (a 500 naming it), not a field clients silently never get.
 */
export const declaredSerializer: FastifySerializerCompiler<z.ZodType> =
  ({ schema, method, url }) =>
  (data) => {
    const result = z.safeEncode(schema, data);
    if (!result.success) throw new ResponseSerializationError(method, url, { cause: result.error });
    const lost = droppedPaths(data, result.data);
    if (lost.length) throw new UndeclaredFieldsError(method, url, lost);
    return JSON.stringify(result.data);
  };

/**
 * An onRoute hook declaring the error responses every route of a scope may answer (its auth, rate limit, request
 * validation, dependencies; 404 for a path naming a resource), beside the route's own. A route's own declaration wins.
 */
export function declareErrors(...statuses: ErrorStatus[]) {
  return (route: RouteOptions) => {
    const withId = route.url.includes(":") ? errorResponses(404) : {};
    const schema: FastifySchema = route.schema ?? {};
    schema.response = { ...errorResponses(...statuses), ...withId, ...(schema.response as object | undefined) };
    route.schema = schema;
  };
}
