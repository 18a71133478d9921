import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { ADMIN_TOKEN, API_URL } from "./stack.js";
import { CONTACT_MAPPING } from "./data.js";

/** The bench talks to the spawned API over real HTTP, as a client would. */

export async function createWorkspace(name: string): Promise<{ id: string; apiKey: string }> {
  const res = await fetch(`${API_URL}/v1/admin/workspaces`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`create workspace: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; apiKey: string };
}

export interface ImportTiming {
  /** The import's id (the undo section undoes it). */
  id: string;
  /** From the first byte of the upload to status done, as the client sees it. */
  totalMs: number;
  /** The worker's part: the import's startedAt to finishedAt. */
  workerMs: number;
  uploadMs: number;
  counts: Record<string, number>;
}

/** Uploads `file` as a raw text/csv body with start=true, then polls until the import is done. */
export async function importFile(apiKey: string, file: string): Promise<ImportTiming> {
  const qs = new URLSearchParams({ kind: "contacts", identifier: "email", mapping: JSON.stringify(CONTACT_MAPPING), start: "true" });
  const t0 = performance.now();
  const res = await fetch(`${API_URL}/v1/imports?${qs}`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "text/csv" },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const created = (await res.json()) as { id?: string; status?: string };
  if (res.status !== 201 || !created.id) throw new Error(`upload: ${res.status} ${JSON.stringify(created)}`);
  const uploadMs = performance.now() - t0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const r = await fetch(`${API_URL}/v1/imports/${created.id}`, { headers: { authorization: `Bearer ${apiKey}` } });
    const imp = (await r.json()) as { status: string; counts: Record<string, number>; startedAt: string; finishedAt: string; failureReason?: string };
    if (imp.status === "done") {
      return {
        id: created.id,
        totalMs: performance.now() - t0,
        workerMs: Date.parse(imp.finishedAt) - Date.parse(imp.startedAt),
        uploadMs,
        counts: imp.counts,
      };
    }
    if (!["queued", "processing", "draft"].includes(imp.status)) throw new Error(`import ${created.id} ended ${imp.status}: ${imp.failureReason}`);
  }
}
