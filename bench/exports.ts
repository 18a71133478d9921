import { createWriteStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { API_URL, OUT, benchSql } from "./stack.js";
import type { Row } from "./report.js";

/**
 * Section 4: export of every person through the public API (POST /v1/exports, default columns), beside
 * `COPY (SELECT the same columns) TO STDOUT` streamed to a file. Needs the exports routes (branch `exports`).
 */

export async function exportsAvailable(apiKey: string): Promise<boolean> {
  const res = await fetch(`${API_URL}/v1/exports`, { headers: { authorization: `Bearer ${apiKey}` } });
  return res.status === 200;
}

/**
 * The same columns as the default users export (native fields, then labels ':'-joined in name order), written the
 * fastest plain way: labels aggregated once per person and merge-joined in id order (a correlated subquery per person,
 * as this baseline first had it, is ~3× slower and flattered the export). COPY takes no bind parameters: the
 * workspace id (a uuid the API returned, checked below) is inlined.
 */
const copySql = (workspaceId: string) => `
  copy (
    select p.email, p.external_id, p.username, p.first_name, p.last_name, p.name, p.company_id, lab.names
    from people p
      left join (select u.id as person_id, string_agg(l.name, ':' order by l.name) as names
                 from people u cross join unnest(u.label_ids) lid join labels l on l.id = lid
                 where u.workspace_id = '${workspaceId}' group by u.id) lab on lab.person_id = p.id
    where p.workspace_id = '${workspaceId}' order by p.id
  ) to stdout (format csv, header)`;

export async function benchExport(apiKey: string, workspaceId: string): Promise<Row[]> {
  const t0 = performance.now();
  const res = await fetch(`${API_URL}/v1/exports`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ kind: "users" }),
  });
  const created = (await res.json()) as { id?: string };
  if (res.status !== 202 || !created.id) throw new Error(`export: ${res.status} ${JSON.stringify(created)}`);
  let exp: { status: string; rowCount: number; sizeBytes: number };
  for (;;) {
    // Polled finely, so the figure is the export as a client sees it, not the polling interval.
    await new Promise((r) => setTimeout(r, 10));
    exp = (await (await fetch(`${API_URL}/v1/exports/${created.id}`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as typeof exp;
    if (exp.status === "done") break;
    if (exp.status === "failed" || exp.status === "expired") throw new Error(`export ${created.id} ${exp.status}`);
  }
  const ms = performance.now() - t0;

  const sql = benchSql();
  let copyMs: number;
  try {
    const c0 = performance.now();
    if (!/^[0-9a-f-]{36}$/.test(workspaceId)) throw new Error(`not a uuid: ${workspaceId}`);
    const readable = await sql.unsafe(copySql(workspaceId)).readable();
    await pipeline(readable, createWriteStream(path.join(OUT, "export-baseline.csv")));
    copyMs = performance.now() - c0;
  } finally {
    await sql.end();
  }
  return [
    {
      what: `export of ${exp.rowCount.toLocaleString("en-US")} people (${(exp.sizeBytes / 1024 ** 2).toFixed(0)} MB), POST to done`,
      figure: `${(ms / 1000).toFixed(1)} s`,
      baseline: `COPY TO ${(copyMs / 1000).toFixed(1)} s`,
      ratio: ms / copyMs,
      target: "≤ 1.5× COPY TO",
      met: ms / copyMs <= 1.5,
    },
  ];
}
