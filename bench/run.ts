import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { writeContacts } from "./data.js";
import { copyBaseline } from "./copy-baseline.js";
import { createWorkspace, importFile, type ImportTiming } from "./client.js";
import { benchEnqueue } from "./enqueue.js";
import { benchSegments, seedEvents, segmentsAvailable } from "./segments.js";
import { benchExport, exportsAvailable } from "./exports.js";
import { benchFairness } from "./fairness.js";
import { benchUndo } from "./undo.js";
import { benchParts } from "./parts.js";
import { renderSections, writeBenchmarksMd, type Section } from "./report.js";
import { API_URL, OUT, QUEUE_PREFIX, benchEnv, buildApp, cpuMark, cpuSince, type CpuMark, benchSql, cleanStorage, freshDatabase, killStarted, peakRssMb, startProcess, waitForHttp, type Proc } from "./stack.js";

/**
 * `npm run bench`: generates deterministic data under bench/.out, measures each figure beside its baseline on
 * this machine and writes the results block of BENCHMARKS.md. BENCH_ROWS / BENCH_RSS_ROWS scale it down.
 */

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RSS_ROWS = Number(process.env.BENCH_RSS_ROWS ?? 5_000_000);
const WORKER_METRICS_PORT = Number(process.env.BENCH_WORKER_METRICS_PORT ?? 3988);
/** BENCH_SECTIONS=import,rss,enqueue runs a subset while developing; the full run measures all. */
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? "import,segments,export,undo,rss,enqueue,parts,fairness").split(","));
const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const secs = (ms: number) => `${fmt(ms / 1000, 1)} s`;

function log(msg: string) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

async function dataFile(rows: number, changedEvery = 0, first = 1): Promise<string> {
  const file = path.join(OUT, `contacts-${rows}${changedEvery ? `-changed${changedEvery}` : ""}${first > 1 ? `-from${first}` : ""}.csv`);
  if (!existsSync(file)) {
    log(`generating ${path.basename(file)}`);
    await writeContacts(file, rows, changedEvery, first);
  }
  return file;
}

async function clearQueues(): Promise<void> {
  const redis = new Redis(benchEnv().REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${QUEUE_PREFIX}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

async function startWorker(extra: Record<string, string> = {}): Promise<Proc> {
  // BENCH_WORKER_LOG=<file>: the worker logs at info level, appended to that file (its time slices, resumes, batches).
  const logFile = process.env.BENCH_WORKER_LOG;
  const env = benchEnv({ WORKER_METRICS_PORT: String(WORKER_METRICS_PORT), ...(logFile ? { LOG_LEVEL: "info" } : {}), ...extra });
  const worker = startProcess("src/workers/main.ts", env, (process.env.BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean), logFile);
  if (process.env.BENCH_APP_ROOT) {
    // Another checkout's worker may serve no metrics: give it time to start instead (queued jobs wait for it anyway).
    await waitForHttp(`http://127.0.0.1:${WORKER_METRICS_PORT}/metrics`, worker, 10_000).catch(() => {});
  } else {
    await waitForHttp(`http://127.0.0.1:${WORKER_METRICS_PORT}/metrics`, worker);
  }
  return worker;
}

async function machine(): Promise<string[]> {
  const sql = benchSql();
  const [pg] = await sql`select version() as v`;
  await sql.end();
  const redis = new Redis(benchEnv().REDIS_URL!);
  const info = await redis.info("server");
  redis.disconnect();
  const cpu = os.cpus();
  const pkg = JSON.parse(await readFile(path.join(OUT, "..", "..", "package.json"), "utf8")) as { dependencies: Record<string, string> };
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${cpu.length} × ${cpu[0]?.model ?? "cpu"}, ${fmt(os.totalmem() / 1024 ** 3, 1)} GB RAM, ${os.type()} ${os.release()}`,
    `- Versions: Node ${process.version}, ${String(pg?.v).split(",")[0]}, Redis ${/redis_version:(\S+)/.exec(info)?.[1]}, ` +
      `postgres.js ${pkg.dependencies.postgres}, bullmq ${pkg.dependencies.bullmq}, csv-parse ${pkg.dependencies["csv-parse"]}, fastify ${pkg.dependencies.fastify}`,
    `- Command: \`${ROWS === 1_000_000 && RSS_ROWS === 5_000_000 ? "" : `BENCH_ROWS=${ROWS} BENCH_RSS_ROWS=${RSS_ROWS} `}npm run bench\``,
    `- Load average when the run started: ${os.loadavg().map((l) => fmt(l, 2)).join(" / ")} (1/5/15 min)`,
  ];
}

/** Runs one import and the CPU the worker and PostgreSQL spent on it. */
async function measuredImport(apiKey: string, file: string, workerPid: number): Promise<ImportTiming & { cpu: CpuMark }> {
  const m0 = await cpuMark(workerPid);
  const t = await importFile(apiKey, file);
  return { ...t, cpu: await cpuSince(m0, workerPid) };
}

/** One COPY baseline run: its time and the CPU of its PostgreSQL backend. */
interface CopyMark {
  ms: number;
  cpu: CpuMark;
}

async function measuredCopy(file: string): Promise<CopyMark> {
  const copy = await copyBaseline(file);
  log(`COPY ${secs(copy.ms)} (PostgreSQL CPU ${secs(copy.cpuSeconds * 1000)})`);
  return { ms: copy.ms, cpu: { process: 0, main: 0, postgres: copy.cpuSeconds } };
}

/** The baseline an import is compared with: the mean of the COPYs measured just before and just after it. */
function around(before: CopyMark, after: CopyMark): CopyMark {
  return { ms: (before.ms + after.ms) / 2, cpu: { process: 0, main: 0, postgres: (before.cpu.postgres + after.cpu.postgres) / 2 } };
}

function importRows(label: string, t: ImportTiming & { cpu: CpuMark }, rows: number, copy: CopyMark, target: number | null): Section["rows"] {
  const copyMs = copy.ms;
  const copyCpu = copy.cpu;
  const ratio = t.totalMs / copyMs;
  return [
    {
      what: `${label}: ${fmt(rows)} rows, API upload to done`,
      figure: `${secs(t.totalMs)} (${fmt(rows / (t.totalMs / 1000))} rows/s)`,
      baseline: `COPY ${secs(copyMs)} (${fmt(rows / (copyMs / 1000))} rows/s)`,
      ratio,
      target: target === null ? "none" : `≤ ${fmt(target, 1)}× COPY`,
      ...(target === null ? {} : { met: ratio <= target }),
    },
    {
      what: `${label}: of which the worker (startedAt→finishedAt)`,
      figure: `${secs(t.workerMs)} (${fmt(rows / (t.workerMs / 1000))} rows/s); upload ${secs(t.uploadMs)}`,
      baseline: `COPY ${secs(copyMs)}`,
      ratio: t.workerMs / copyMs,
      target: "",
    },
    {
      what: `${label}: CPU used (worker process, of which its main thread; all PostgreSQL processes)`,
      figure: `worker ${secs(t.cpu.process * 1000)} (main thread ${secs(t.cpu.main * 1000)}); PostgreSQL ${secs(t.cpu.postgres * 1000)}`,
      baseline: `COPY: PostgreSQL ${secs(copyCpu.postgres * 1000)}`,
      ratio: t.cpu.postgres / copyCpu.postgres,
      target: "",
    },
  ];
}

async function main(): Promise<void> {
  const started = performance.now();
  await mkdir(OUT, { recursive: true });
  const fresh = await dataFile(ROWS);
  const changed = await dataFile(ROWS, 10);

  log("npm run build (the API and worker run from dist/, as in the image)");
  await buildApp();
  log("fresh database roster_bench, queues and storage");
  await freshDatabase();
  await clearQueues();
  await cleanStorage();
  const header = await machine();

  log("COPY baseline");
  const copies = [await measuredCopy(fresh)];

  const api = startProcess("src/api/server.ts", benchEnv(), (process.env.BENCH_API_NODE_ARGS ?? "").split(" ").filter(Boolean));
  await waitForHttp(`${API_URL}/healthz`, api);
  let worker = await startWorker();
  const sections: Section[] = [];
  const results: Record<string, unknown> = { rows: ROWS, copies };
  try {
    const ws = await createWorkspace("bench");
    log(`import fresh ${ROWS}`);
    const tFresh = await measuredImport(ws.apiKey, fresh, worker.pid);
    log(`fresh ${secs(tFresh.totalMs)} ${JSON.stringify(tFresh.counts)} cpu ${JSON.stringify(tFresh.cpu)}`);
    copies.push(await measuredCopy(fresh));
    const tAgain = await measuredImport(ws.apiKey, fresh, worker.pid);
    log(`again ${secs(tAgain.totalMs)} ${JSON.stringify(tAgain.counts)} cpu ${JSON.stringify(tAgain.cpu)}`);
    copies.push(await measuredCopy(fresh));
    const tChanged = await measuredImport(ws.apiKey, changed, worker.pid);
    log(`changed ${secs(tChanged.totalMs)} ${JSON.stringify(tChanged.counts)} cpu ${JSON.stringify(tChanged.cpu)}`);
    copies.push(await measuredCopy(fresh));
    const rss1 = await peakRssMb(worker.pid);
    Object.assign(results, { tFresh, tAgain, tChanged, rss1 });
    sections.push({
      title: "1. Import of contacts through the API and one worker",
      rows: [
        ...importRows("fresh (all created)", tFresh, ROWS, around(copies[0]!, copies[1]!), 1.5),
        ...importRows("again (all unchanged)", tAgain, ROWS, around(copies[1]!, copies[2]!), 1.0),
        ...importRows("10% changed", tChanged, ROWS, around(copies[2]!, copies[3]!), null),
      ],
      notes: [
        `COPY baseline, measured before the first import and after each: ${copies.map((c) => `${secs(c.ms)} (PostgreSQL CPU ${secs(c.cpu.postgres * 1000)})`).join(", ")}. ` +
          "Each import is compared with the mean of the COPYs just before and after it, so that a machine whose speed drifts during the run (shared cores) moves both sides alike.",
        `Counts: fresh ${JSON.stringify(tFresh.counts)}; again ${JSON.stringify(tAgain.counts)}; changed ${JSON.stringify(tChanged.counts)}.`,
        `COPY baseline: the same file streamed by postgres.js into a bare table with (workspace_id, lower(email)) and (workspace_id, external_id) unique indexes.`,
      ],
    });

    if (SECTIONS.has("segments")) {
      const title = "3. Recompute of 5 dynamic segments (POST /v1/segments/:id/recompute to ready) vs count(*) with the same predicate";
      if (await segmentsAvailable(ws.apiKey)) {
        log("seeding events");
        const e0 = performance.now();
        const events = await seedEvents(ws.id);
        log(`${events} events in ${secs(performance.now() - e0)}; recomputing segments`);
        const rows = await benchSegments(ws.apiKey, ws.id, ROWS, events);
        results.segments = rows;
        sections.push({ title, rows, notes: [`${fmt(events)} events in the workspace (5 per person inserted set-based by the bench, dated over the last 90 days, plus the imports' person events) over ${fmt(ROWS)} people.`] });
      } else {
        sections.push({
          title,
          rows: [{ what: "5 segments over 1M people and 5M events", figure: null, baseline: "count(*)", target: "≤ 2× count" }],
          notes: ["Not measured yet: this branch has no segments API (it lives on branch `segments`). bench/segments.ts measures it through the public API as soon as the routes exist."],
        });
      }
    }

    if (SECTIONS.has("export")) {
      const title = "4. Export of all people (POST /v1/exports to done) vs COPY (SELECT …) TO STDOUT";
      if (await exportsAvailable(ws.apiKey)) {
        log("export");
        const rows = await benchExport(ws.apiKey, ws.id);
        results.export = rows;
        sections.push({ title, rows, notes: ["Default user columns (native fields and labels); the baseline selects the same columns, labels aggregated per person."] });
      } else {
        sections.push({
          title,
          rows: [{ what: "export of 1M people", figure: null, baseline: "COPY TO", target: "≤ 1.5× COPY TO" }],
          notes: ["Not measured yet: this branch has no exports API (it lives on branch `exports`). bench/exports.ts measures it through the public API as soon as the routes exist."],
        });
      }
    }

    if (SECTIONS.has("undo")) {
      // After every section that reads the workspace's people (segments, export): the undos erase most of them.
      const undo = await benchUndo(ws, { fresh: tFresh, again: tAgain, changed: tChanged }, worker.pid, log);
      results.undo = undo.result;
      sections.push({ title: "7. Undo of the three imports (POST /v1/imports/:id/undo to undone), and what recording the before-images costs", rows: undo.rows, notes: undo.notes });
    }

    if (SECTIONS.has("rss")) {
    await worker.stop();
    worker = await startWorker();
    const rssFile = await dataFile(RSS_ROWS);
    const ws2 = await createWorkspace("bench-rss");
    log(`import fresh ${RSS_ROWS} for peak RSS`);
    const tBig = await importFile(ws2.apiKey, rssFile);
    const rss2 = await peakRssMb(worker.pid);
    log(`RSS ${fmt(rss1)} MB (${ROWS}) / ${fmt(rss2)} MB (${RSS_ROWS}); big import ${secs(tBig.totalMs)}`);
    Object.assign(results, { tBig, rss2 });
    sections.push({
      title: "2. Worker peak RSS (VmHWM of the worker process)",
      rows: [
        { what: `after the three ${fmt(ROWS)}-row imports`, figure: `${fmt(rss1)} MB`, baseline: "", target: "≤ 300 MB", met: rss1 <= 300 },
        {
          what: `fresh worker, one ${fmt(RSS_ROWS)}-row import (${secs(tBig.totalMs)}, ${fmt(RSS_ROWS / (tBig.totalMs / 1000))} rows/s)`,
          figure: `${fmt(rss2)} MB`,
          baseline: `${fmt(rss1)} MB at ${fmt(ROWS)}`,
          ratio: rss2 / rss1,
          target: "≤ 300 MB and flat",
          met: rss2 <= 300 && rss2 <= rss1 * 1.15,
        },
      ],
      notes: ["Flat means within 15% of the smaller run's peak."],
    });
    }

    if (SECTIONS.has("enqueue")) {
    await worker.stop();
    log("enqueue (API only; the worker is stopped so it does not compete for the 2 cores)");
    const enq = await benchEnqueue(ws.apiKey);
    results.enqueue = enq;
    sections.push({
      title: "5. API: POST /v1/imports of a small pasted CSV (5 rows, start=true) under autocannon, vs a bare route doing the same durable work",
      rows: [
        {
          what: "unthrottled, 20 connections: throughput",
          figure: `${fmt(enq.maxRps)} requests/s`,
          baseline: `${fmt(enq.baseline.maxRps)} requests/s`,
          ratio: enq.rpsRatio,
          target: "≥ 0.8× baseline",
          met: enq.rpsRatio >= 0.8,
        },
        {
          what: "unthrottled, 20 connections: p99",
          figure: `${fmt(enq.maxP99Ms)} ms`,
          baseline: `${fmt(enq.baseline.maxP99Ms)} ms`,
          ratio: enq.p99Ratio,
          target: "≤ 1.25× baseline",
          met: enq.p99Ratio <= 1.25,
        },
        {
          what: "at 1,000 requests/s, 20 connections",
          figure: `${fmt(enq.fixedRps)} requests/s, p50 ${fmt(enq.fixedP50Ms)} ms, p99 ${fmt(enq.fixedP99Ms)} ms`,
          baseline: `${fmt(enq.baseline.fixedRps)} requests/s, p50 ${fmt(enq.baseline.fixedP50Ms)} ms, p99 ${fmt(enq.baseline.fixedP99Ms)} ms`,
          ratio: enq.fixedP99Ms / enq.baseline.fixedP99Ms,
          target: "p99 ≤ 20 ms",
          met: enq.fixedP99Ms <= 20 && enq.fixedRps >= 950,
        },
      ],
      notes: [
        `Errors/timeouts: ${enq.fixedErrors} (baseline ${enq.baseline.fixedErrors}); non-2xx answers: ${enq.non2xx} (baseline ${enq.baseline.non2xx}). Duration ${process.env.BENCH_ENQUEUE_SECONDS ?? 10} s each; phases alternate API / baseline.`,
        "Baseline (bench/enqueue-baseline.ts, its own process): a bare Fastify route writing the pasted CSV to a file (fsync, rename, directory fsync), one INSERT into a scratch table, one BullMQ add; no auth, validation, sniffing or logging. The ratio column is Roster ÷ baseline.",
      ],
    });
    }

    // The enqueue section leaves thousands of small imports queued (its worker was stopped): the big imports of the
    // sections below would wait behind all of them. They are the bench's own; they go, with their jobs.
    if (SECTIONS.has("enqueue") && (SECTIONS.has("parts") || SECTIONS.has("fairness"))) {
      await worker.stop();
      await clearQueues();
      const sql = benchSql();
      await sql`delete from imports where status = 'queued'`;
      await sql.end();
      worker = await startWorker();
    }

    if (SECTIONS.has("parts")) {
      await worker.stop();
      const parts = await benchParts(ROWS, fresh, WORKER_METRICS_PORT, log);
      results.parts = parts.result;
      sections.push(parts.section);
      worker = await startWorker();
    }

    if (SECTIONS.has("fairness")) {
      // Last: its four big imports grow the people table the other sections measure against.
      await worker.stop();
      worker = await startWorker({ IMPORT_CONCURRENCY: process.env.IMPORT_CONCURRENCY ?? "2" });
      const other = await dataFile(ROWS, 0, ROWS + 1);
      const fair = await benchFairness(ROWS, [fresh, other], log);
      results.fairness = fair.result;
      sections.push(fair.section);
    }
  } finally {
    await worker.stop();
    await api.stop();
  }
  const totalMs = performance.now() - started;
  header.push(`- Whole run: ${secs(totalMs)}; load average at the end: ${os.loadavg().map((l) => fmt(l, 2)).join(" / ")}`);
  await writeFile(path.join(OUT, "results.json"), JSON.stringify(results, null, 2));
  // A run against another checkout (BENCH_APP_ROOT) is a trial: its figures stay out of this branch's BENCHMARKS.md.
  const target = process.env.BENCH_APP_ROOT ? path.join(OUT, "BENCHMARKS-trial.md") : undefined;
  const file = await writeBenchmarksMd(renderSections(header, sections), target);
  log(`done in ${secs(totalMs)}; results in ${file}`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killStarted();
    process.exit(130);
  });
}

main().catch((err: unknown) => {
  console.error(err);
  killStarted();
  process.exit(1);
});
