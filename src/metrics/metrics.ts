import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Queue } from "bullmq";
import { withTimeout } from "../lib/timeout.js";

/** Seconds; imports and exports of big files run for minutes, so the buckets reach well past the HTTP range. */
const JOB_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** A scrape must not hang on a Redis outage: queue counts are left out after this long. */
const QUEUE_METRICS_TIMEOUT_MS = 1_500;

export const ROW_OUTCOMES = ["created", "updated", "unchanged", "skipped", "failed"] as const;
export type RowOutcome = (typeof ROW_OUTCOMES)[number];

/**
 * One process's metrics. Each process (API, worker, all-in-one) owns a registry and serves it itself:
 * job durations and row counters are counted where the jobs run.
 */
export interface Metrics {
  registry: Registry;
  importRows: Counter<"kind" | "outcome">;
  jobDuration: Histogram<"queue" | "job" | "outcome">;
  exportBytes: Counter<"kind">;
  /** People erased by deletion jobs (DELETE /v1/users/:id is counted by its HTTP metric). */
  peopleErased: Counter;
  httpDuration: Histogram<"method" | "route" | "status_code">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    importRows: new Counter({
      name: "roster_import_rows_total",
      help: "Import rows committed, by import kind and outcome (dry runs are not counted)",
      labelNames: ["kind", "outcome"],
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: "roster_job_duration_seconds",
      help: "Time a job took from start to completion or failure, by queue, job name and outcome",
      labelNames: ["queue", "job", "outcome"],
      buckets: JOB_DURATION_BUCKETS,
      registers: [registry],
    }),
    exportBytes: new Counter({
      name: "roster_export_bytes_total",
      help: "Bytes of export files written, by export kind",
      labelNames: ["kind"],
      registers: [registry],
    }),
    peopleErased: new Counter({
      name: "roster_people_erased_total",
      help: "People erased by deletion jobs, counted as each batch commits",
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "roster_http_request_duration_seconds",
      help: "HTTP request durations by method, route template and status code",
      labelNames: ["method", "route", "status_code"],
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

/** Counts one committed import batch. */
export function recordImportRows(metrics: Metrics, kind: string, counts: Record<RowOutcome, number>): void {
  for (const outcome of ROW_OUTCOMES) {
    if (counts[outcome] > 0) metrics.importRows.inc({ kind, outcome }, counts[outcome]);
  }
}

/** Counts the bytes of a finished export file: call it once per export, where the file is complete. */
export function recordExportBytes(metrics: Metrics, kind: string, bytes: number): void {
  if (bytes > 0) metrics.exportBytes.inc({ kind }, bytes);
}

/**
 * BullMQ prints HELP/TYPE per queue; a Prometheus parser rejects a second HELP for one family,
 * so the queues' lines are merged into one block per metric family.
 */
function mergeFamilies(chunks: string[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { meta: [], samples: [] }));
    return f;
  };
  for (const line of chunks.join("\n").split("\n")) {
    const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (!f.meta.some((l) => l.startsWith(`# ${meta[1]} `))) f.meta.push(line);
    } else if (line.trim()) {
      family(/^[^{\s]+/.exec(line)![0]).samples.push(line);
    }
  }
  return [...families.values()].map((f) => [...f.meta, ...f.samples].join("\n")).join("\n") + "\n";
}

async function queueMetrics(queues: Queue[]): Promise<string> {
  const texts = await withTimeout(Promise.all(queues.map((q) => q.exportPrometheusMetrics())), QUEUE_METRICS_TIMEOUT_MS, () => new Error("timed out"));
  return mergeFamilies(texts);
}

/** The Prometheus text of this process: its registry, then the job counts per queue and state from BullMQ. */
export async function renderMetrics(metrics: Metrics, queues: Queue[]): Promise<string> {
  const own = await metrics.registry.metrics();
  try {
    return own + (own.endsWith("\n") ? "" : "\n") + (await queueMetrics(queues));
  } catch (err) {
    // Process metrics still matter while Redis is down; the gap in bullmq_* series shows the outage.
    return `${own}\n# queue metrics unavailable: ${(err as Error).message.replace(/\s+/g, " ")}\n`;
  }
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
