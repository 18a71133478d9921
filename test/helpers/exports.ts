 
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import type { Client } from "./api.js";

const TERMINAL = new Set(["done", "failed", "expired"]);

/** POSTs an export and polls it until it is done or failed. */
export async function runExportVia(client: Client, body: Record<string, unknown>, timeoutMs = 60_000): Promise<any> {
  const created = await client.request("POST", "/v1/exports", { payload: body });
  if (created.status !== 202) throw new Error(`POST /v1/exports: ${created.status} ${created.body}`);
  return waitForExport(client, created.json.id, timeoutMs);
}

export async function waitForExport(client: Client, id: string, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.request("GET", `/v1/exports/${id}`);
    if (res.status !== 200) throw new Error(`GET export ${id}: ${res.status} ${res.body}`);
    if (TERMINAL.has(res.json.status)) return res.json;
    if (Date.now() > until) throw new Error(`export ${id} still ${res.json.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Downloaded {
  status: number;
  headers: Record<string, unknown>;
  /** The bytes as served (gzip still compressed). */
  raw: Buffer;
  /** The CSV text, gunzipped when the file is .csv.gz. */
  text: string;
}

export async function download(client: Client, id: string): Promise<Downloaded> {
  const res = await client.app.inject({ method: "GET", url: `/v1/exports/${id}/download`, headers: { authorization: `Bearer ${client.apiKey}` } });
  const raw = res.rawPayload;
  const gz = String(res.headers["content-type"] ?? "").startsWith("application/gzip");
  return { status: res.statusCode, headers: res.headers as Record<string, unknown>, raw, text: (gz ? gunzipSync(raw) : raw).toString("utf8") };
}

/** Parses CSV text as the tests read it: arrays, nothing trimmed or cast. */
export function csvRows(text: string): string[][] {
  return parse(text, { bom: true, relax_column_count: false }) as string[][];
}
