import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { parseApiContract, registeredRoutes, toOpenApiPath, type ContractRoute } from "../helpers/api-contract.js";
import { useTestContext } from "../helpers/context.js";

const t = useTestContext();
const contract = parseApiContract(path.resolve(import.meta.dirname, "../../docs/API.md"));
/** The documentation routes, the queue dashboard (a UI with its own API) and the web console's files are not operations of the Roster API. */
const CONSOLE_FILE = (p: string) => p === "/" || p === "/index.html" || p.startsWith("/console.");
const SELF = (p: string) => p === "/openapi.json" || p === "/docs" || p.startsWith("/docs/") || p.startsWith("/admin/queues") || CONSOLE_FILE(p);

let app: FastifyInstance;
let spec: any;

beforeAll(async () => {
  app = await buildApp(t.ctx);
  const res = await app.inject({ method: "GET", url: "/openapi.json" });
  expect(res.statusCode).toBe(200);
  spec = res.json();
});
afterAll(async () => {
  await app?.close();
});

/** Why the operation's success response is not documented with its shape, or null when it is. */
function successShapeProblem(op: any): string | null {
  // The zod `schema.response` each route declares gives the shape (it serialises the response too).
  const success = Object.entries(op.responses ?? {}).filter(([s]) => /^2/.test(s)) as [string, any][];
  if (success.length === 0) return "no 2xx response";
  const bare = success.filter(([status, r]) => status !== "204" && !r.content).map(([s]) => s);
  return bare.length ? `no body shape for ${bare.join(", ")}` : null;
}

function operation(method: string, p: string): any {
  return spec.paths?.[toOpenApiPath(p)]?.[method.toLowerCase()];
}

describe("OpenAPI document", () => {
  it("is OpenAPI 3 with the API's security schemes", () => {
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.components.securitySchemes)).toEqual(expect.arrayContaining(["apiKey", "adminToken"]));
  });

  it("parses the contract: API.md names the routes this app serves today", () => {
    // Guards the parser: if it stopped finding routes the checks below would pass vacuously.
    const served = contract.filter((r) => app.hasRoute({ method: r.method as "GET", url: r.path }));
    expect(served.length).toBeGreaterThanOrEqual(12);
    expect(served.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(["POST /v1/imports", "PUT /v1/imports/:id/mapping", "POST /v1/admin/workspaces"]));
  });

  it("documents every route the app registers, with its success response shape (routes added later included)", () => {
    const routes = registeredRoutes(app).filter((r) => !SELF(r.path));
    expect(routes.length).toBeGreaterThanOrEqual(12);
    const missing = routes.filter((r) => !operation(r.method, r.path)).map((r) => `${r.method} ${r.path}`);
    expect(missing).toEqual([]);
    const shapeless = routes.map((r) => [`${r.method} ${r.path}`, successShapeProblem(operation(r.method, r.path))]).filter(([, problem]) => problem);
    expect(shapeless).toEqual([]);
  });

  describe.each(contract.filter((r) => !SELF(r.path)).map((r) => [`${r.method} ${r.path}`, r] as [string, ContractRoute]))("%s", (_name, route) => {
    it("is in the spec with the request shape API.md gives, when the app serves it", () => {
      if (!app.hasRoute({ method: route.method as "GET", url: route.path })) return; // not built yet on this branch
      const op = operation(route.method, route.path);
      expect(op, "operation missing from the spec").toBeDefined();
      expect(successShapeProblem(op), "success response").toBeNull();
      const params: any[] = op.parameters ?? [];
      for (const name of [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1])) {
        expect(params.find((p) => p.in === "path" && p.name === name), `path parameter ${name}`).toBeDefined();
      }
      for (const name of route.queryKeys) {
        expect(params.find((p) => p.in === "query" && p.name === name), `query parameter ${name}`).toBeDefined();
      }
      if (route.bodyKeys.length) {
        const props = op.requestBody?.content?.["application/json"]?.schema?.properties ?? {};
        expect(Object.keys(props)).toEqual(expect.arrayContaining(route.bodyKeys));
      }
      for (const type of route.mediaTypes) {
        expect(op.requestBody?.content?.[type], `request body as ${type}`).toBeDefined();
      }
    });
  });

  it("describes the three shapes POST /v1/imports accepts", () => {
    const body = operation("POST", "/v1/imports").requestBody.content;
    expect(body["multipart/form-data"].schema.properties.file).toMatchObject({ type: "string", format: "binary" });
    expect(body["multipart/form-data"].schema.required).toContain("file");
    expect(body["application/json"].schema.required).toContain("csv");
    expect(body["text/csv"].schema.type).toBe("string");
    const created = operation("POST", "/v1/imports").responses["201"].content["application/json"].schema;
    expect(Object.keys(created.properties)).toEqual(expect.arrayContaining(["id", "status", "counts", "errors", "suggestedMapping"]));
  });

  it("keeps every branch of a union: PUT /v1/imports/:id/mapping takes {header: target} or \"suggested\"", () => {
    const mapping = operation("PUT", "/v1/imports/:id/mapping").requestBody.content["application/json"].schema.properties.mapping;
    expect(mapping.anyOf).toEqual([
      { type: "string", enum: ["suggested"] },
      { type: "object", additionalProperties: { type: "string" } },
    ]);
    // A branch the converter could not describe is dropped without a word (anyOf of one) or left empty: none anywhere.
    const lost: string[] = [];
    const walk = (v: unknown, at: string): void => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${at}[${i}]`));
      if (!v || typeof v !== "object") return;
      const anyOf = (v as { anyOf?: unknown[] }).anyOf;
      if (Array.isArray(anyOf) && (anyOf.length < 2 || anyOf.some((b) => b && typeof b === "object" && Object.keys(b).length === 0))) lost.push(at);
      for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
    };
    walk(spec.paths, "paths");
    expect(lost).toEqual([]);
  });

  it("declares the Location header on every response that sends one, and on no other", () => {
    const located = [
      ["POST", "/v1/imports", "201"],
      ["POST", "/v1/imports/:id/start", "202"],
      ["POST", "/v1/imports/:id/validate", "202"],
      ["POST", "/v1/imports/:id/cancel", "202"],
      ["POST", "/v1/imports/:id/undo", "202"],
      ["POST", "/v1/users/identify", "200"],
      ["POST", "/v1/users/identify", "201"],
      ["POST", "/v1/segments", "201"],
      ["POST", "/v1/segments/:id/recompute", "202"],
      ["POST", "/v1/deletions", "202"],
      ["POST", "/v1/exports", "202"],
      ["POST", "/v1/mapping-templates", "201"],
      ["POST", "/v1/labels", "201"],
      ["POST", "/v1/webhooks", "201"],
      ["PUT", "/v1/attributes/:key", "202"],
    ];
    for (const [method, p, status] of located) {
      expect(operation(method!, p!)?.responses?.[status!]?.headers?.Location, `${method} ${p} ${status}`).toMatchObject({ schema: { type: "string" } });
    }
    // Every response whose description says it sends a Location is among them; no other declares one.
    const declared: string[] = [];
    for (const [p, ops] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(op.responses ?? {}) as [string, any][]) {
          const name = `${method.toUpperCase()} ${p} ${status}`;
          if (/Location/.test(r.description ?? "")) expect(r.headers?.Location, name).toBeDefined();
          if (r.headers?.Location) declared.push(name);
        }
      }
    }
    expect(declared.sort()).toEqual(located.map(([m, p, s]) => `${m} ${toOpenApiPath(p!)} ${s}`).sort());
  });

  it("serves a UI at /docs", async () => {
    const res = await app.inject({ method: "GET", url: "/docs" });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("swagger-ui");
  });
});
