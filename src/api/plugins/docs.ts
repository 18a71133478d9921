import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorSchema } from "../schemas/common.js";

/**
 * Documentation-only shapes for what a route does not declare in its validation schema: bodies it reads itself
 * (multipart, raw CSV) and responses it sends without a serialization schema. Nothing here validates at runtime.
 */
export interface RouteDocs {
  summary?: string;
  description?: string;
  /** Request body per content type. */
  body?: Record<string, z.ZodType>;
  /** Responses per status: a zod shape per content type, or none (e.g. 204). */
  responses?: Record<number, { description: string; content?: Record<string, z.ZodType> }>;
}

declare module "fastify" {
  interface FastifyContextConfig {
    docs?: RouteDocs;
  }
}

const toJson = (schema: z.ZodType, io: "input" | "output") => z.toJSONSchema(schema, { target: "openapi-3.0", io, unrepresentable: "any" });

type Transformed = { schema: Record<string, unknown> & { hide?: boolean }; url: string };

/** Security and error responses follow from where a route lives, so routes added later are documented without extra work. */
function conventionsFor(url: string, method: string) {
  if (url.startsWith("/v1/admin")) return { security: [{ adminToken: [] }], tag: "admin", errors: [401, 404, 422] };
  if (url.startsWith("/v1/")) {
    const tag = url.split("/")[2] ?? "v1";
    const errors = [401, 422, 429, 503];
    if (url.includes(":")) errors.push(404);
    if (method === "POST") errors.push(409);
    return { security: [{ apiKey: [] }], tag, errors };
  }
  return { security: [], tag: "operations", errors: [] };
}

/** Adds the route's documentation-only shapes and the conventions above to what jsonSchemaTransform made of its zod schemas. */
function transform(input: Parameters<typeof jsonSchemaTransform>[0]): Transformed {
  const out = jsonSchemaTransform(input) as Transformed;
  if (out.schema?.hide) return out;
  const route = input.route;
  const method = String(Array.isArray(route.method) ? route.method[0] : route.method).toUpperCase();
  const docs = (route.config as { docs?: RouteDocs } | undefined)?.docs;
  const schema: Record<string, unknown> = { ...(out.schema ?? {}) };
  const conv = conventionsFor(out.url, method);
  schema.tags ??= [conv.tag];
  if (conv.security.length) schema.security ??= conv.security;
  if (docs?.summary) schema.summary = docs.summary;
  if (docs?.description) schema.description = docs.description;
  if (docs?.body) {
    schema.body = { content: Object.fromEntries(Object.entries(docs.body).map(([type, s]) => [type, { schema: toJson(s, "input") }])) };
  }
  const responses: Record<string, unknown> = { ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
  for (const [status, r] of Object.entries(docs?.responses ?? {})) {
    responses[status] = r.content
      ? { description: r.description, content: Object.fromEntries(Object.entries(r.content).map(([type, s]) => [type, { schema: toJson(s, "output") }])) }
      : { description: r.description, type: "null" };
  }
  for (const status of conv.errors) {
    responses[String(status)] ??= { description: ERROR_DESCRIPTIONS[status] ?? "Error", content: { "application/json": { schema: toJson(errorSchema, "output") } } };
  }
  if (Object.keys(responses).length) schema.response = responses;
  return { ...out, schema };
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  401: "Missing or invalid credentials",
  404: "Not found (including another workspace's resource)",
  409: "Conflict with the resource's current state",
  422: "Invalid request; `details.problems` lists each field and reason",
  429: "Rate limit for the workspace exceeded; retry after `Retry-After` seconds",
  503: "A dependency (database or queue) is unavailable; retry shortly",
};

/**
 * OpenAPI 3 generated from the routes' zod schemas: `GET /openapi.json` and a UI at `/docs`.
 * Registered before the routes (it collects them as they are added) and not encapsulated, so it sees every route.
 */
export const docsPlugin = fp(async (app: FastifyInstance, opts: { version: string }) => {
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Roster API",
        version: opts.version,
        description: "People data with CSV imports, segments and exports as background jobs. Errors use `{error: {code, message, details}, requestId}`.",
      },
      components: {
        securitySchemes: {
          apiKey: { type: "http", scheme: "bearer", description: "A workspace API key" },
          adminToken: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN of the deployment" },
        },
      },
    },
    transform,
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { docExpansion: "list" } });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
});
