import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUEUE_NAMES } from "../../src/queue/jobs.js";
import { startMetricsServer } from "../../src/workers/metrics-server.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { createClient, pasteImport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { runExportVia } from "../helpers/exports.js";
import { parsePrometheus, valueOf, type Sample } from "../helpers/prometheus.js";

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

async function scrape(): Promise<{ text: string; samples: Sample[]; type: string }> {
  const res = await client.app.inject({ method: "GET", url: "/metrics" });
  expect(res.statusCode).toBe(200);
  return { text: res.body, samples: parsePrometheus(res.body), type: String(res.headers["content-type"]) };
}

async function importAndWait(csv: string) {
  const created = await pasteImport(client, csv, { identifier: "email", start: true });
  expect(created.status).toBe(201);
  return waitForImport(client, created.json.id);
}

describe("GET /metrics", () => {
  it("counts imported rows by outcome, job durations and queue states after real imports", async () => {
    const rows = (outcome: string) => valueOf(before.samples, "roster_import_rows_total", { kind: "contacts", outcome });
    const before = await scrape();
    expect(rows("created")).toBe(0);

    const first = await importAndWait("email,first_name\na@example.com,Ann\nb@example.com,Bob\nnot-an-email,Cat\n");
    expect(first.counts).toMatchObject({ created: 2, failed: 1 });
    // b@ twice: the earlier row is skipped, the later one updates Bob; a@ is unchanged.
    const second = await importAndWait("email,first_name\na@example.com,Ann\nb@example.com,Bobby\nb@example.com,Robert\n");
    expect(second.counts).toMatchObject({ unchanged: 1, updated: 1, skipped: 1, created: 0, failed: 0 });
    // A dry run writes nothing and counts nothing.
    const dry = await pasteImport(client, "email\nc@example.com\n", { identifier: "email" });
    await client.request("POST", `/v1/imports/${dry.json.id}/validate`);
    expect((await waitForImport(client, dry.json.id)).status).toBe("validated");

    // The import row says done before BullMQ records the job as completed: wait for the queue to catch up.
    let { samples, type } = await scrape();
    for (let i = 0; i < 100 && valueOf(samples, "roster_job_duration_seconds_count", { job: "import.small", outcome: "completed" }) < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ({ samples, type } = await scrape());
    }
    expect(type).toContain("text/plain");
    const count = (outcome: string) => valueOf(samples, "roster_import_rows_total", { kind: "contacts", outcome });
    expect({ created: count("created"), updated: count("updated"), unchanged: count("unchanged"), skipped: count("skipped"), failed: count("failed") }).toEqual({
      created: 2,
      updated: 1,
      unchanged: 1,
      skipped: 1,
      failed: 1,
    });

    // Three import.small jobs ran (two imports and the dry run: small files take the small-import lane), each observed once.
    expect(valueOf(samples, "roster_job_duration_seconds_count", { queue: "imports-small", job: "import.small", outcome: "completed" })).toBe(3);
    expect(valueOf(samples, "roster_job_duration_seconds_sum", { queue: "imports-small", job: "import.small", outcome: "completed" })).toBeGreaterThan(0);

    // Job counts per queue and state come from BullMQ, for every queue.
    expect(valueOf(samples, "bullmq_job_count", { queue: "imports-small", state: "completed" })).toBe(3);
    expect(valueOf(samples, "bullmq_job_count", { queue: "imports-small", state: "failed" })).toBe(0);
    for (const queue of QUEUE_NAMES) {
      expect(samples.some((s) => s.name === "bullmq_job_count" && s.labels.queue === queue)).toBe(true);
    }

    // HTTP durations by route template, not by URL.
    expect(valueOf(samples, "roster_http_request_duration_seconds_count", { method: "POST", route: "/v1/imports", status_code: "201" })).toBe(3);
    expect(valueOf(samples, "roster_http_request_duration_seconds_count", { method: "GET", route: "/v1/imports/:id", status_code: "200" })).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === "roster_http_request_duration_seconds_count" && /[0-9a-f]{8}-/.test(s.labels.route ?? ""))).toBe(false);

    // Default process metrics.
    expect(samples.some((s) => s.name === "process_cpu_user_seconds_total")).toBe(true);
    expect(samples.some((s) => s.name === "nodejs_heap_size_used_bytes")).toBe(true);
  });

  it("counts the bytes of each finished export file by kind, and BullMQ's completed and failed jobs per queue", async () => {
    const bytes = async () => valueOf((await scrape()).samples, "roster_export_bytes_total", { kind: "users" });
    expect(await bytes()).toBe(0);
    const first = await runExportVia(client, { kind: "users" });
    const second = await runExportVia(client, { kind: "users", gzip: true });
    expect(first.status).toBe("done");
    expect(second.status).toBe("done");
    expect(first.sizeBytes).toBeGreaterThan(0);
    // The worker counts a file's bytes just after the export says done (the commit comes first, a lost fence counts nothing).
    await expect.poll(bytes, { timeout: 5_000, interval: 50 }).toBe(first.sizeBytes + second.sizeBytes);

    // BullMQ counts a job once it records it completed, a moment after the export says done.
    let { samples } = await scrape();
    for (let i = 0; i < 100 && valueOf(samples, "bullmq_job_completed_total", { queue: "exports" }) < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      ({ samples } = await scrape());
    }
    // The exports queue also runs the scheduled export cleanup.
    expect(valueOf(samples, "bullmq_job_completed_total", { queue: "exports" })).toBeGreaterThanOrEqual(2);
    expect(valueOf(samples, "bullmq_job_completed_total", { queue: "imports-small" })).toBe(3);
    expect(valueOf(samples, "bullmq_job_failed_total", { queue: "imports-small" })).toBe(0);
  });

  it("has one HELP and TYPE line per metric family, as Prometheus requires", async () => {
    const { text } = await scrape();
    const help = text.split("\n").filter((l) => l.startsWith("# HELP "));
    const names = help.map((l) => l.split(" ")[2]);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain("bullmq_job_count");
  });

  it("a worker-only process serves the same registry on its own listener", async () => {
    const server = await startMetricsServer(t.ctx, "127.0.0.1", 0);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      const samples = parsePrometheus(await res.text());
      expect(valueOf(samples, "roster_import_rows_total", { kind: "contacts", outcome: "created" })).toBe(2);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
