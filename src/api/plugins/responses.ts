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
 * True when `kept` is the same JSON as `sent`, key order included: nothing dropped, added, changed or moved (keys whose
 * value is undefined count as absent, as JSON.stringify leaves them out).
 */
export function sameJson(sent: unknown, kept: unknown): boolean {
  if (sent === kept) return true;
  if (sent === null || kept === null || typeof sent !== "object" || typeof kept !== "object") return false;
  if (Array.isArray(sent) || Array.isArray(kept)) {
    if (!Array.isArray(sent) || !Array.isArray(kept) || sent.length !== kept.length) return false;
    for (let i = 0; i < sent.length; i++) if (!sameJson(sent[i], kept[i])) return false;
    return true;
  }
  const a = sent as Record<string, unknown>;
  const b = kept as Record<string, unknown>;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  for (let i = 0, j = 0; ; i++, j++) {
    while (i < ak.length && a[ak[i]!] === undefined) i++;
    while (j < bk.length && b[bk[j]!] === undefined) j++;
    if (i === ak.length || j === bk.length) return i === ak.length && j === bk.length;
    if (ak[i] !== bk[j] || !sameJson(a[ak[i]!], b[bk[j]!])) return false;
  }
}

/**
 * Serialises a response with its declared zod schema (fastify-type-provider-zod's way: encode, then JSON), and refuses
 * one that would lose a field on the way: a field the handler sends but the schema lacks is a bug to see in the tests
 * (a 500 naming it), not a field clients silently never get.
 *
 * Most responses are plain data the schema takes as it is. Those are checked with a parse (zod compiles object
 * parsing, encoding it does not: several times faster on an import object) and sent as they came when the parse
 * gives back the very same JSON; anything else (a codec, a default, a field too many, a value of the wrong type) takes
 * the encode path, which answers exactly as before.
 */
export const declaredSerializer: FastifySerializerCompiler<z.ZodType> =
  ({ schema, method, url }) =>
  (data) => {
    const parsed = schema.safeParse(data);
    if (parsed.success && sameJson(data, parsed.data)) return JSON.stringify(data);
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
