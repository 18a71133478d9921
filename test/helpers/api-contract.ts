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
