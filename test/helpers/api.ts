import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll } from "vitest";
import { buildApp } from "../../src/api/app.js";
import { createWorkspace } from "../../src/domain/workspaces/workspaces.js";
import { startWorkerRole } from "../../src/workers/main.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import type { TestContext } from "./context.js";

export interface Client {
  app: FastifyInstance;
  workspaceId: string;
  apiKey: string;
  request(method: InjectOptions["method"], url: string, opts?: Omit<InjectOptions, "method" | "url">): Promise<{ status: number; json: any; body: string; headers: Record<string, unknown> }>;
}

/** An API app on the test context plus a fresh workspace and its key. */
export async function createClient(ctx: TestContext, app?: FastifyInstance, name = "Acme"): Promise<Client> {
  const instance = app ?? (await buildApp(ctx));
  const ws = await createWorkspace(ctx.db, name);
  return {
    app: instance,
    workspaceId: ws.id,
    apiKey: ws.apiKey,
    async request(method, url, opts = {}) {
      const res = await instance.inject({ method, url, ...opts, headers: { authorization: `Bearer ${ws.apiKey}`, ...(opts.headers ?? {}) } });
      let json: unknown = undefined;
      try {
        json = res.json();
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, json, body: res.body, headers: res.headers as Record<string, unknown> };
    },
  };
}

export async function startTestWorkers(ctx: TestContext): Promise<WorkerPool> {
  return startWorkerRole(ctx);
}

/**
 * beforeAll/afterAll wiring for a fairness test: two workspaces on one API, "Big" and "Small", and the file's workers;
 * `const w = useBigAndSmall(t);` then `w.big`, `w.small` inside tests.
 */
export function useBigAndSmall(t: { ctx: TestContext }): { big: Client; small: Client; pool: WorkerPool } {
  const holder = {} as { big: Client; small: Client; pool: WorkerPool };
  beforeAll(async () => {
    holder.big = await createClient(t.ctx, undefined, "Big");
    holder.small = await createClient(t.ctx, holder.big.app, "Small");
    holder.pool = await startTestWorkers(t.ctx);
  });
  afterAll(async () => {
    await holder.pool?.close();
    await holder.big?.app.close();
  });
  return holder;
}

const TERMINAL = new Set(["done", "failed", "cancelled", "validated"]);

/** Polls the import until it reaches a terminal status (or the timeout). */
export async function waitForImport(client: Client, id: string, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.request("GET", `/v1/imports/${id}`);
    if (res.status !== 200) throw new Error(`GET import ${id}: ${res.status} ${res.body}`);
    if (TERMINAL.has(res.json.status)) return res.json;
    if (Date.now() > until) throw new Error(`import ${id} still ${res.json.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POSTs pasted CSV text as JSON and returns the created import. */
export async function pasteImport(client: Client, csv: string, fields: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return client.request("POST", "/v1/imports", { payload: { csv, ...fields }, headers });
}

/** Pastes CSV with an identifier (and the suggested mapping unless one is given), starts it and waits for the end. */
export async function importAndWait(client: Client, csv: string, fields: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<any> {
  const created = await pasteImport(client, csv, { identifier: "email", start: true, ...fields });
  if (created.status !== 201) throw new Error(`POST /v1/imports: ${created.status} ${created.body}`);
  return waitForImport(client, created.json.id, timeoutMs);
}

/** Every error of an import, from the CSV report, as objects keyed by the report's header. */
export async function errorReport(client: Client, id: string): Promise<Record<string, string>[]> {
  const res = await client.request("GET", `/v1/imports/${id}/errors`);
  if (res.status !== 200) throw new Error(`GET errors: ${res.status} ${res.body}`);
  const { parse } = await import("csv-parse/sync");
  return parse(res.body, { columns: true }) as Record<string, string>[];
}

/** A contacts CSV (email, external_id, first_name) of `rows` people whose emails and ids start with `prefix`. */
export function contactRows(prefix: string, rows: number): string {
  return ["email,external_id,first_name", ...Array.from({ length: rows }, (_, i) => `${prefix}${i}@x.io,${prefix}-${i},N${i}`)].join("\n");
}

/** Uploads a raw text/csv body identified by email and starts it at once (start=true); returns the import's id. */
export async function startCsvImport(client: Client, csv: string): Promise<string> {
  const created = await client.request("POST", "/v1/imports?identifier=email&start=true", { payload: csv, headers: { "content-type": "text/csv" } });
  if (created.status !== 201) throw new Error(`upload: ${created.status} ${created.body}`);
  return created.json.id as string;
}
