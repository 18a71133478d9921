import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { createWorkspace } from "./client.js";
import { CONTACT_MAPPING, smallPaste } from "./data.js";
import type { Section } from "./report.js";
import { API_URL, benchSql } from "./stack.js";

/**
 * Issue 18 (fairness): two big imports of one workspace hold both slots of a worker (IMPORT_CONCURRENCY=2) while
 * small imports of another workspace arrive. Measured: each small one's submission→done, and the big ones' throughput
 * beside the same two imports run with nothing else queued.
 */

const SMALL_IMPORTS = Number(process.env.BENCH_FAIR_SMALL ?? 20);
const SMALL_ROWS = 20;
/** Small imports arrive one every this many ms (0: all at once) once both big ones are running. */
const SPACING_MS = Number(process.env.BENCH_FAIR_SPACING_MS ?? 250);
/** Each import is polled this often: 20 pollers must not load the API on a 2-core machine; times come from finishedAt. */
const POLL_MS = 200;

interface ImportView {
  status: string;
  counts: Record<string, number>;
  startedAt: string | null;
  finishedAt: string | null;
  failureReason?: string;
}

async function get(apiKey: string, id: string): Promise<ImportView> {
  const r = await fetch(`${API_URL}/v1/imports/${id}`, { headers: { authorization: `Bearer ${apiKey}` } });
  return (await r.json()) as ImportView & { processed?: number };
}

async function uploadFile(apiKey: string, file: string): Promise<string> {
  const qs = new URLSearchParams({ kind: "contacts", identifier: "email", mapping: JSON.stringify(CONTACT_MAPPING), start: "true" });
  const res = await fetch(`${API_URL}/v1/imports?${qs}`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "text/csv" },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const created = (await res.json()) as { id?: string };
  if (res.status !== 201 || !created.id) throw new Error(`upload: ${res.status} ${JSON.stringify(created)}`);
  return created.id;
}

async function paste(apiKey: string, csv: string): Promise<string> {
  const res = await fetch(`${API_URL}/v1/imports`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ csv, identifier: "email", mapping: CONTACT_MAPPING, start: true }),
  });
  const created = (await res.json()) as { id?: string };
  if (res.status !== 201 || !created.id) throw new Error(`paste: ${res.status} ${JSON.stringify(created)}`);
  return created.id;
}

async function until(apiKey: string, id: string, ok: (v: ImportView) => boolean): Promise<ImportView> {
  for (;;) {
    const v = await get(apiKey, id);
    if (ok(v)) return v;
    if (["failed", "cancelled"].includes(v.status)) throw new Error(`import ${id} ended ${v.status}: ${v.failureReason}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

const isDone = (v: ImportView) => v.status === "done";

/**
 * Every big pair starts from the same database: the people, events and import ledgers the sections (and pairs) before
 * it wrote are truncated and a checkpoint flushes what they left dirty. A pair writing into a people table the pairs
 * before it grew (1M → 7M people, 4.5 GB, against 128 MB of shared_buffers) ran up to 25% slower than the one before
 * it, which swamped the 10% the section measures. This section runs last: nothing reads those tables after it.
 */
async function sameStart(): Promise<void> {
  const sql = benchSql();
  try {
    await sql`truncate people, events, segment_memberships, import_changes, import_people`;
    await sql`checkpoint`;
  } finally {
    await sql.end();
  }
}

/** Two big imports of one new workspace, submitted together; wall time from the first upload to the last done. */
async function twoBig(files: [string, string], label: string) {
  await sameStart();
  const ws = await createWorkspace(label);
  const t0 = Date.now();
  const ids = await Promise.all(files.map((f) => uploadFile(ws.apiKey, f)));
  return { ws, ids, t0 };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

export interface FairnessResult {
  /** The mean of aloneBeforeMs and aloneAfterMs: the shared run's baseline. */
  aloneMs: number;
  aloneBeforeMs: number;
  aloneAfterMs: number;
  sharedMs: number;
  smallMs: number[];
  p50: number;
  p95: number;
  max: number;
  bigCounts: Record<string, number>[];
}

export async function benchFairness(rows: number, files: [string, string], log: (m: string) => void): Promise<{ section: Section; result: FairnessResult }> {
  // The pair runs alone before and after the shared run, and the shared run is compared with the mean of the two: the
  // mean cancels a steady drift of the machine (each pair also starts from the same tables: sameStart).
  const runAlone = async (label: string) => {
    log(`fairness: two ${rows}-row imports alone (${label})`);
    const alone = await twoBig(files, `fair-alone-${label}`);
    for (const id of alone.ids) await until(alone.ws.apiKey, id, isDone);
    return Date.now() - alone.t0;
  };
  const aloneBeforeMs = await runAlone("before");
  log(`fairness: alone ${aloneBeforeMs} ms; now with ${SMALL_IMPORTS} small imports of another workspace`);

  const shared = await twoBig(files, "fair-big");
  const smallWs = await createWorkspace("fair-small");
  // Both slots held: each big one is processing with a committed batch.
  for (const id of shared.ids) await until(shared.ws.apiKey, id, (v) => isDone(v) || (v.status === "processing" && (v.counts.processed ?? 0) > 0));
  const smalls: { id: string; submittedAt: number }[] = [];
  for (let i = 0; i < SMALL_IMPORTS; i++) {
    const submittedAt = Date.now();
    smalls.push({ id: await paste(smallWs.apiKey, smallPaste(i, SMALL_ROWS)), submittedAt });
    if (SPACING_MS) await new Promise((r) => setTimeout(r, SPACING_MS));
  }
  const smallMs = await Promise.all(smalls.map(async (s) => Date.parse((await until(smallWs.apiKey, s.id, isDone)).finishedAt!) - s.submittedAt));
  const bigViews = await Promise.all(shared.ids.map((id) => until(shared.ws.apiKey, id, isDone)));
  const sharedMs = Math.max(...bigViews.map((v) => Date.parse(v.finishedAt!))) - shared.t0;
  const p50 = percentile(smallMs, 50);
  const p95 = percentile(smallMs, 95);
  const max = Math.max(...smallMs);
  const bigsStillRunning = bigViews.every((v) => Date.parse(v.finishedAt!) > smalls[smalls.length - 1]!.submittedAt);
  const aloneAfterMs = await runAlone("after");
  const aloneMs = (aloneBeforeMs + aloneAfterMs) / 2;
  log(`fairness: small p50 ${p50} p95 ${p95} max ${max} ms; big pair ${sharedMs} ms vs ${aloneMs} ms alone (before ${aloneBeforeMs}, after ${aloneAfterMs})`);

  const aloneRate = (2 * rows) / (aloneMs / 1000);
  const sharedRate = (2 * rows) / (sharedMs / 1000);
  const loss = 1 - sharedRate / aloneRate;
  const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
  const section: Section = {
    title: `6. Fairness: ${SMALL_IMPORTS} small imports (${SMALL_ROWS} rows) of one workspace while two ${fmt(rows)}-row imports of another run (IMPORT_CONCURRENCY=2)`,
    rows: [
      {
        what: "small imports: submission → done",
        figure: `p50 ${fmt(p50)} ms, p95 ${fmt(p95)} ms, max ${fmt(max)} ms`,
        baseline: "",
        target: "p95 ≤ 3 s",
        met: p95 <= 3000 && bigsStillRunning,
      },
      {
        what: "the two big imports together: upload → both done",
        figure: `${fmt(sharedMs)} ms (${fmt(sharedRate)} rows/s)`,
        baseline: `alone ${fmt(aloneMs)} ms (${fmt(aloneRate)} rows/s; before ${fmt(aloneBeforeMs)}, after ${fmt(aloneAfterMs)})`,
        ratio: sharedMs / aloneMs,
        target: "≤ 10% throughput lost",
        met: loss <= 0.1,
      },
    ],
    notes: [
      `Small imports arrive one every ${SPACING_MS} ms once both big ones run (BENCH_FAIR_SPACING_MS; 0: all at once). IMPORT_TIME_SLICE_MS ${process.env.IMPORT_TIME_SLICE_MS ?? "default"}; IMPORT_SMALL_MAX_BYTES ${process.env.IMPORT_SMALL_MAX_BYTES ?? "default (1 MiB: the small ones run in the small-import lane, IMPORT_SMALL_CONCURRENCY slot(s) beside the two import slots)"}.`,
      `The big ones were ${bigsStillRunning ? "still running" : "**not** running"} when the last small one was submitted; their counts: ${JSON.stringify(bigViews.map((v) => v.counts))}.`,
      "The big pair runs alone (a fresh workspace), then with the small ones (another fresh workspace), then alone again; the baseline is the mean of the two runs alone. Each pair starts from the same tables: people, events and the import ledgers truncated, then a checkpoint.",
    ],
  };
  return { section, result: { aloneMs, aloneBeforeMs, aloneAfterMs, sharedMs, smallMs, p50, p95, max, bigCounts: bigViews.map((v) => v.counts) } };
}
