import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";

/** One route as API.md states it: method, path (`:param` style), and the request shape it names. */
export interface ContractRoute {
  method: string;
  path: string;
  /** Top-level keys of the JSON body written after the path, e.g. `{name}` → ["name"]. */
  bodyKeys: string[];
  /** Query parameters written after the path, e.g. `?status=` → ["status"]. */
  queryKeys: string[];
  /** Media types the route's prose names in backticks (e.g. `multipart/form-data`). */
  mediaTypes: string[];
}

const METHOD = "(?:GET|POST|PUT|PATCH|DELETE)";
const ROUTE_SPAN = new RegExp("`(" + METHOD + "(?:\\|" + METHOD + ")*) (/[^`\\s?{]*)(\\?[^`\\s{]*)?\\s*(\\{[^`]*\\})?`", "g");

/** Splits `{a, b?: {...}, c: [..]}` into its top-level keys. */
export function topLevelKeys(braced: string): string[] {
  const inner = braced.trim().replace(/^\{/, "").replace(/\}$/, "");
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of inner) {
    if ("{[(".includes(ch)) depth++;
    if ("}])".includes(ch)) depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => /^\s*"?(\w+)"?\??/.exec(p)?.[1]).filter((k): k is string => Boolean(k));
}

/** Every route API.md names, with the request shape written next to it. */
export function parseApiContract(file: string): ContractRoute[] {
  const text = readFileSync(file, "utf8");
  const routes: ContractRoute[] = [];
  for (const m of text.matchAll(ROUTE_SPAN)) {
    const [, methods, path, query, body] = m;
    // The prose of the bullet (up to the next bullet) names the media types of bodies the route reads itself.
    const rest = text.slice(m.index + m[0].length).split(/\n- |\n\n/)[0] ?? "";
    const ownProse = rest.split(/`(?:GET|POST|PUT|PATCH|DELETE)[ |]/)[0] ?? "";
    const mediaTypes = [...ownProse.matchAll(/`((?:multipart|text|application)\/[\w.+-]+)`/g)].map((x) => x[1]!);
    const queryKeys = query ? [...query.matchAll(/[?&](\w+)=/g)].map((x) => x[1]!) : [];
    for (const method of methods!.split("|")) {
      routes.push({ method, path: path!, bodyKeys: body ? topLevelKeys(body) : [], queryKeys, mediaTypes: method === "GET" ? [] : mediaTypes });
    }
  }
  return routes;
}

/** Every method+path the app serves (HEAD excluded), read from fastify's route tree. */
export function registeredRoutes(app: FastifyInstance): { method: string; path: string }[] {
  const out: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^([│ ├└─]*?)[├└]── (.+?) \(([A-Z, ]+)\)$/.exec(line) ?? /^([│ ├└─]*?)[├└]── (.+?)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join("");
    for (const method of (m[3] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      if (method !== "HEAD") out.push({ method, path });
    }
  }
  return out;
}

/** `/v1/imports/:id` → `/v1/imports/{id}` as OpenAPI writes it. */
export const toOpenApiPath = (path: string) => path.replace(/:(\w+)/g, "{$1}");

/**
 * How a JSON value departs from an OpenAPI 3.0 schema as this spec writes them (properties, required,
 * additionalProperties, items, anyOf/oneOf, nullable, type, enum): fields the spec lacks, fields it requires that are
 * missing, values of another type. Empty when the value fits.
 */
export function specProblems(schema: any, value: unknown, path = "$"): string[] {
  if (!schema || Object.keys(schema).filter((k) => k !== "description" && k !== "default").length === 0) return []; // any value
  if (value === null) return schema.nullable || schema.enum?.includes(null) ? [] : [`${path}: null where the spec says ${schema.type ?? "a value"}`];
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) {
    const each = alternatives.map((alt: any) => specProblems(alt, value, path));
    return each.some((p: string[]) => p.length === 0) ? [] : [`${path}: fits none of ${alternatives.length} alternatives (${each[0].join("; ")})`];
  }
  if (schema.enum && !schema.enum.includes(value)) return [`${path}: ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`];
  const actual = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  if (schema.type && schema.type !== actual && !(schema.type === "number" && actual === "integer")) return [`${path}: ${actual} where the spec says ${schema.type}`];
  if (Array.isArray(value)) return value.flatMap((item, i) => specProblems(schema.items, item, `${path}[${i}]`));
  if (actual !== "object") return [];
  const obj = value as Record<string, unknown>;
  const props: Record<string, any> = schema.properties ?? {};
  const out = (schema.required ?? []).filter((k: string) => !(k in obj)).map((k: string) => `${path}.${k}: missing, the spec requires it`);
  for (const [key, v] of Object.entries(obj)) {
    if (key in props) out.push(...specProblems(props[key], v, `${path}.${key}`));
    else if (typeof schema.additionalProperties === "object") out.push(...specProblems(schema.additionalProperties, v, `${path}.${key}`));
    else if (schema.additionalProperties === false || schema.properties) out.push(`${path}.${key}: not in the spec`);
  }
  return out;
}
