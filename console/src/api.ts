/**
 * The console's only way to the server: the public /v1 API, typed by api.gen.ts (generated from /openapi.json at
 * build time), so a changed route or field fails `npm run build` rather than the people using the console.
 */
import { parseEventStream } from "../../src/lib/event-stream";
import type { paths } from "./api.gen";

type Method = "get" | "post" | "put" | "patch" | "delete";
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type Content<R> = R extends { content: { "application/json": infer T } } ? T : undefined;
type Responses<O> = O extends { responses: infer R } ? R : never;
/** The body of the operation's success answer (200, 201 or 202). */
export type Ok<O> = Responses<O> extends infer R
  ? R extends { 200: infer A } ? Content<A> : R extends { 201: infer A } ? Content<A> : R extends { 202: infer A } ? Content<A> : undefined
  : never;
type JsonBody<O> = O extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type Query<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
type PathParams<O> = O extends { parameters: { path: infer P } } ? P : never;

export type PathsWith<M extends Method> = { [P in keyof paths]: paths[P][M] extends undefined | never ? never : P }[keyof paths];
export type Answer<P extends keyof paths, M extends Method> = Ok<Op<P, M>>;
export type Body<P extends keyof paths, M extends Method> = JsonBody<Op<P, M>>;

export type ImportJob = Answer<"/v1/imports/{id}", "get">;
export type UserPage = Answer<"/v1/users", "get">;
export type User = UserPage["data"][number];
export type Profile = Answer<"/v1/users/{id}", "get">;
export type Segment = Answer<"/v1/segments/{id}", "get">;
export type ExportJob = Answer<"/v1/exports/{id}", "get">;
export type Conditions = NonNullable<Body<"/v1/segments/preview", "post">["conditions"]>;

/** An API error answer, carrying the API's own sentence. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const KEY_STORE = "roster.apiKey";
/** The key lives in sessionStorage only: it goes with the browser tab's session or with "Sign out". */
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY_STORE),
  signIn: (key: string) => sessionStorage.setItem(KEY_STORE, key),
  signOut: () => sessionStorage.removeItem(KEY_STORE),
};

interface Options<O> {
  path?: PathParams<O>;
  query?: Query<O>;
  body?: JsonBody<O> | FormData;
  /** An API key to use instead of the stored one (signing in checks the key before keeping it). */
  key?: string;
}

function url(template: string, params: Record<string, unknown> = {}, query: Record<string, unknown> = {}): string {
  const path = template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(params[k])));
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

/** Sends a raw request with the key; throws ApiError with the API's message on any non-2xx answer. */
export async function send(method: string, target: string, body?: unknown, key = session.key()): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(target, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "network_error", "The server could not be reached. Check your connection and try again.");
  }
  if (res.ok) return res;
  let parsed: { error?: { code?: string; message?: string; details?: unknown } } = {};
  try {
    parsed = await res.json();
  } catch {
    /* not JSON: the status line below says what happened */
  }
  throw new ApiError(res.status, parsed.error?.code ?? `http_${res.status}`, parsed.error?.message ?? `The server answered ${res.status} ${res.statusText}.`, parsed.error?.details);
}

/** A typed call: `api("post", "/v1/segments/preview", { body: { conditions } })`. */
export async function api<M extends Method, P extends PathsWith<M>>(method: M, path: P, opts: Options<Op<P, M>> = {}): Promise<Ok<Op<P, M>>> {
  const res = await send(method.toUpperCase(), url(path, opts.path as Record<string, unknown>, opts.query as Record<string, unknown>), opts.body, opts.key ?? session.key());
  if (res.status === 204) return undefined as Ok<Op<P, M>>;
  return (await res.json()) as Ok<Op<P, M>>;
}

/**
 * A GET route of the spec with its path parameters filled in: `route("/v1/imports/{id}/errors", { id })`. The template
 * must be a key of the generated `paths`, so renaming a route the console downloads or follows fails its build.
 */
export function route<P extends PathsWith<"get">>(path: P, params: PathParams<Op<P, "get">>): string {
  return url(path, params as Record<string, unknown>);
}

/** Fetches a file the API serves behind the key (error reports, exports) and hands it to the browser as a download. */
export async function download<P extends PathsWith<"get">>(path: P, params: PathParams<Op<P, "get">>, filename: string): Promise<void> {
  const res = await send("GET", route(path, params));
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

/**
 * Follows a Server-Sent Events stream of the API (the import progress), calling `on` with each event's name and JSON
 * data until the server closes it or `signal` aborts. EventSource cannot send the key in a header; fetch can.
 */
export async function followEvents<P extends PathsWith<"get">>(
  path: P,
  params: PathParams<Op<P, "get">>,
  on: (event: string, data: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  const key = session.key();
  const res = await fetch(route(path, params), { headers: { accept: "text/event-stream", ...(key ? { authorization: `Bearer ${key}` } : {}) }, signal });
  if (!res.ok || !res.body) throw new ApiError(res.status, `http_${res.status}`, `The progress stream answered ${res.status}.`);
  const reader = res.body.getReader();
  async function* chunks() {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  }
  for await (const m of parseEventStream(chunks())) on(m.event, m.data);
}
