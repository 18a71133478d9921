import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { z } from "zod";

/**
 * Route documentation beside its schema: a summary, and the bodies a route reads itself (multipart, raw CSV), which
 * no validation schema declares. Responses are not here: each route declares them in `schema.response`, which both
 * serialises and documents them.
 */
export interface RouteDocs {
  summary?: string;
  description?: string;
  /** Request body per content type. */
  body?: Record<string, z.ZodType>;
  /**
   * The success statuses whose response sends a `Location` header (declared in the spec). An idempotent route with a
   * `location` sends it on every success status it declares, and needs nothing here.
   */
  location?: readonly number[];
}

const LOCATION_HEADER = { type: "string", description: "The path of the resource the response describes (GET it for its state)" };

declare module "fastify" {
  interface FastifyContextConfig {
    docs?: RouteDocs;
  }
}

const toJson = (schema: z.ZodType) => z.toJSONSchema(schema, { target: "openapi-3.0", io: "input", unrepresentable: "any" });

type Transformed = { schema: Record<string, unknown> & { hide?: boolean }; url: string };

/** Security and tags follow from where a route lives, so routes added later are documented without extra work. */
function conventionsFor(url: string) {
  if (url.startsWith("/v1/admin")) return { security: [{ adminToken: [] }], tag: "admin" };
  if (url.startsWith("/v1/")) return { security: [{ apiKey: [] }], tag: url.split("/")[2] ?? "v1" };
  return { security: [], tag: "operations" };
}

/** Adds the route's summary, self-read bodies and the conventions above to what jsonSchemaTransform made of its zod schemas. */
function transform(input: Parameters<typeof jsonSchemaTransform>[0]): Transformed {
  const out = jsonSchemaTransform(input) as Transformed;
  if (out.schema?.hide) return out;
  const config = input.route.config as { docs?: RouteDocs; idempotent?: { location?: unknown } } | undefined;
  const docs = config?.docs;
  const schema: Record<string, unknown> = { ...(out.schema ?? {}) };
  const responses = schema.response as Record<string, Record<string, unknown>> | undefined;
  if (responses) {
    const success = Object.keys(responses).filter((s) => /^2/.test(s) && s !== "204");
    const located = docs?.location ? docs.location.map(String) : config?.idempotent?.location ? success : [];
    schema.response = Object.fromEntries(
      Object.entries(responses).map(([status, r]) => [status, located.includes(status) ? { ...r, headers: { ...(r.headers as object | undefined), Location: LOCATION_HEADER } } : r]),
    );
  }
  const conv = conventionsFor(out.url);
  schema.tags ??= [conv.tag];
  if (conv.security.length) schema.security ??= conv.security;
  if (docs?.summary) schema.summary = docs.summary;
  if (docs?.description) schema.description = docs.description;
  if (docs?.body) {
    schema.body = { content: Object.fromEntries(Object.entries(docs.body).map(([type, s]) => [type, { schema: toJson(s) }])) };
  }
  return { ...out, schema };
}

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
