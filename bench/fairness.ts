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
 * When each of a workspace's imports (`ids`) finished, read with one list request every POLL_MS: polling each of the 20
 * small imports (100 requests/s) took API and PostgreSQL CPU from the big imports the section measures.
 */
async function finishedAll(apiKey: string, ids: string[]): Promise<number[]> {
  for (;;) {
    const r = await fetch(`${API_URL}/v1/imports?limit=100`, { headers: { authorization: `Bearer ${apiKey}` } });
    const page = (await r.json()) as { data: (ImportView & { id: string })[] };
    const byId = new Map(page.data.map((v) => [v.id, v]));
    const failed = page.data.find((v) => ["failed", "cancelled"].includes(v.status));
    if (failed) throw new Error(`import ${failed.id} ended ${failed.status}: ${failed.failureReason}`);
    if (ids.every((id) => byId.get(id)?.status === "done")) return ids.map((id) => Date.parse(byId.get(id)!.finishedAt!));
    await new Promise((res) => setTimeout(res, POLL_MS));
  }
}

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

/** A big import's committed rows over time: each batch's commit sets `processed`, and `updated_at` to its transaction's start. */
type Progress = { t: number; rows: number }[];

/** Reads the big imports' committed rows every 100 ms from PostgreSQL (a point per batch), until stopped. */
function recordProgress(ids: string[]) {
  const sql = benchSql();
  const points = new Map<string, Progress>(ids.map((id) => [id, []]));
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const rows = await sql<{ id: string; processed: string; t: string }[]>`
        select id, processed, extract(epoch from updated_at) * 1000 as t from imports where id in ${sql(ids)}`;
      for (const r of rows) {
        const ps = points.get(r.id)!;
        if (Number(r.processed) !== (ps.at(-1)?.rows ?? 0)) ps.push({ t: Number(r.t), rows: Number(r.processed) });
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  return {
    points,
    async stop() {
      stopped = true;
      await loop;
      await sql.end();
    },
  };
}

/** Rows committed by `t`, interpolated between the batches' points. */
function rowsAt(ps: Progress, t: number): number {
  let prev = { t: -Infinity, rows: 0 };
  for (const p of ps) {
    if (p.t >= t) return prev.t === -Infinity ? 0 : prev.rows + ((p.rows - prev.rows) * (t - prev.t)) / (p.t - prev.t);
    prev = p;
  }
  return prev.rows;
}

/** Rows per second both big imports committed together between `from` and `to`. */
function pairRate(points: Map<string, Progress>, from: number, to: number): number {
  let rows = 0;
  for (const ps of points.values()) rows += rowsAt(ps, to) - rowsAt(ps, from);
  return rows / ((to - from) / 1000);
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
  /** The pair's rate while the small ones ran, and as long before and after, in the same run. */
  window: { ms: number; rateDuring: number; rateBefore: number; rateAfter: number; loss: number; valid: boolean };
  /** The pair's time lost to the small ones, and its share of the shared run's wall time. */
  lostMs: number;
  runLoss: number;
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
  const progress = recordProgress(shared.ids);
  const smallWs = await createWorkspace("fair-small");
  // Both big ones well under way (a quarter of their rows each), so the pair's steady rate before the small ones arrive
  // can be read off the same run.
  for (const id of shared.ids) await until(shared.ws.apiKey, id, (v) => isDone(v) || (v.status === "processing" && (v.counts.processed ?? 0) >= rows / 4));
  const smalls: { id: string; submittedAt: number }[] = [];
  for (let i = 0; i < SMALL_IMPORTS; i++) {
    const submittedAt = Date.now();
    smalls.push({ id: await paste(smallWs.apiKey, smallPaste(i, SMALL_ROWS)), submittedAt });
    if (SPACING_MS) await new Promise((r) => setTimeout(r, SPACING_MS));
  }
  const smallEnds = await finishedAll(smallWs.apiKey, smalls.map((s) => s.id));
  const smallMs = smallEnds.map((end, i) => end - smalls[i]!.submittedAt);
  const bigViews = await Promise.all(shared.ids.map((id) => until(shared.ws.apiKey, id, isDone)));
  await progress.stop();
  // The pair's rate while the small ones were in the system (first submitted to last done), against its rate over as
  // long just before and just after, in the same run: the machine's drift between runs does not enter.
  const during = { from: smalls[0]!.submittedAt, to: Math.max(...smallEnds) };
  const span = during.to - during.from;
  const before = { from: during.from - span, to: during.from };
  const after = { from: during.to, to: during.to + span };
  const firstBigDone = Math.min(...bigViews.map((v) => Date.parse(v.finishedAt!)));
  const bothRunning = Math.max(...[...progress.points.values()].map((ps) => ps[0]?.t ?? Infinity));
  const windowsInRun = before.from >= bothRunning && after.to <= firstBigDone;
  const rateDuring = pairRate(progress.points, during.from, during.to);
  const rateAround = (pairRate(progress.points, before.from, before.to) + pairRate(progress.points, after.from, after.to)) / 2;
  const windowLoss = 1 - rateDuring / rateAround;
  const sharedMs = Math.max(...bigViews.map((v) => Date.parse(v.finishedAt!))) - shared.t0;
  // What the small ones cost the pair over its whole run: the rows it did not commit while they ran, at the rate it
  // had around them, is the time it lost; its share of the shared run's wall time is the throughput lost.
  const lostMs = ((rateAround - rateDuring) / rateAround) * span;
  const runLoss = lostMs / sharedMs;
  const p50 = percentile(smallMs, 50);
  const p95 = percentile(smallMs, 95);
  const max = Math.max(...smallMs);
  const bigsStillRunning = bigViews.every((v) => Date.parse(v.finishedAt!) > smalls[smalls.length - 1]!.submittedAt);
  const aloneAfterMs = await runAlone("after");
  const aloneMs = (aloneBeforeMs + aloneAfterMs) / 2;
  log(`fairness: small p50 ${p50} p95 ${p95} max ${max} ms; big pair ${sharedMs} ms vs ${aloneMs} ms alone (before ${aloneBeforeMs}, after ${aloneAfterMs})`);
  log(
    `fairness: pair rate ${Math.round(rateDuring)} rows/s while the small ones ran (${span} ms) vs ${Math.round(pairRate(progress.points, before.from, before.to))} before, ${Math.round(pairRate(progress.points, after.from, after.to))} after${windowsInRun ? "" : " (a window ran past a big import's end)"}`,
  );

  const aloneRate = (2 * rows) / (aloneMs / 1000);
  const sharedRate = (2 * rows) / (sharedMs / 1000);
  const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
  const rateBefore = pairRate(progress.points, before.from, before.to);
  const rateAfter = pairRate(progress.points, after.from, after.to);
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
        what: "the two big imports: throughput lost to the small ones over their run (the time lost while the small ones ran, below, over the run's wall time)",
        figure: `${fmt(lostMs)} ms of ${fmt(sharedMs)} ms: ${(runLoss * 100).toFixed(1)}% lost`,
        baseline: "",
        target: "≤ 10% throughput lost",
        met: windowsInRun && runLoss <= 0.1,
      },
      {
        what: `the two big imports while the small ones ran (first submitted → last done, ${fmt(span)} ms): rows committed per second`,
        figure: `${fmt(rateDuring)} rows/s`,
        baseline: `the same run just before and after, as long each: ${fmt(rateAround)} rows/s (before ${fmt(rateBefore)}, after ${fmt(rateAfter)})`,
        ratio: rateDuring / rateAround,
        target: "none (what the time lost comes from)",
      },
      {
        what: "the two big imports together: upload → both done",
        figure: `${fmt(sharedMs)} ms (${fmt(sharedRate)} rows/s)`,
        baseline: `alone ${fmt(aloneMs)} ms (${fmt(aloneRate)} rows/s; before ${fmt(aloneBeforeMs)}, after ${fmt(aloneAfterMs)})`,
        ratio: sharedMs / aloneMs,
        target: "none (see the notes)",
      },
    ],
    notes: [
      `Small imports arrive one every ${SPACING_MS} ms once both big ones have committed a quarter of their rows (BENCH_FAIR_SPACING_MS; 0: all at once). IMPORT_TIME_SLICE_MS ${process.env.IMPORT_TIME_SLICE_MS ?? "default"}; IMPORT_SMALL_MAX_BYTES ${process.env.IMPORT_SMALL_MAX_BYTES ?? "default (1 MiB: the small ones run in the small-import lane, IMPORT_SMALL_CONCURRENCY slot(s) beside the two import slots)"}.`,
      `The big ones were ${bigsStillRunning ? "still running" : "**not** running"} when the last small one was submitted; their counts: ${JSON.stringify(bigViews.map((v) => v.counts))}.`,
      `Throughput lost: the big pair's committed rows (read every 100 ms from PostgreSQL, one point per batch, interpolated) while the small ones were in the system, against the same pair's rate over as long just before and just after${windowsInRun ? "" : " (**not valid in this run**: a window fell outside the time both big imports ran)"}. The rows not committed meanwhile, at the rate around, are the time the pair lost; the small ones run in the small-import lane and cost the big ones nothing once done (no yield, no resume), so that time over the run's wall time is the throughput lost. While they run, the small ones' own work (their requests, runs and commits: ~${fmt((lostMs * 2) / SMALL_IMPORTS)} ms of CPU each) is taken from the pair (about, on the 2 cores).`,
      "Whole runs, for context only: the big pair alone (a fresh workspace), then with the small ones (another fresh workspace), then alone again; the baseline is the mean of the two runs alone. Each pair starts from the same tables (people, events and the import ledgers truncated, then a checkpoint). On this 2-core machine two identical pairs alone took from 57.6 to 80.9 s (2026-11-30, ninth session), so a whole-run comparison cannot resolve 10%.",
    ],
  };
  return {
    section,
    result: { aloneMs, aloneBeforeMs, aloneAfterMs, sharedMs, smallMs, p50, p95, max, bigCounts: bigViews.map((v) => v.counts), window: { ms: span, rateDuring, rateBefore, rateAfter, loss: windowLoss, valid: windowsInRun }, lostMs, runLoss },
  };
}
