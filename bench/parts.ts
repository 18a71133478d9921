/**
 * Section 8: one big import across workers (IMPORT_PARTS, src/domain/imports/parts.ts). The same 1M-row file into two
 * new workspaces: one worker process running it as one run, then two worker processes (one slot each) running it
 * as two parts. On this 2-core machine the two parts share the cores with PostgreSQL's two backends, so the figure
 * says what splitting costs or gains here; BENCHMARKS.md turns the measured CPU into a model for more cores.
 */
import { createWorkspace, importFile, type ImportTiming } from "./client.js";
import type { Section } from "./report.js";
import { benchEnv, cpuMark, cpuSince, startProcess, waitForHttp, type CpuMark, type Proc } from "./stack.js";

const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const secs = (ms: number) => `${fmt(ms / 1000, 1)} s`;

async function workers(n: number, env: Record<string, string>, firstPort: number): Promise<Proc[]> {
  const procs: Proc[] = [];
  for (let i = 0; i < n; i++) {
    const port = firstPort + i;
    const p = startProcess("src/workers/main.ts", benchEnv({ WORKER_METRICS_PORT: String(port), IMPORT_CONCURRENCY: "1", ...env }));
    await waitForHttp(`http://127.0.0.1:${port}/metrics`, p);
    procs.push(p);
  }
  return procs;
}

type Measured = ImportTiming & { cpu: CpuMark };

async function measure(file: string, procs: Proc[], name: string): Promise<Measured> {
  const ws = await createWorkspace(name);
  const marks = await Promise.all(procs.map((p) => cpuMark(p.pid)));
  const t = await importFile(ws.apiKey, file);
  const used = await Promise.all(procs.map((p, i) => cpuSince(marks[i]!, p.pid)));
  // PostgreSQL's CPU is machine-wide in each mark: take it once.
  return { ...t, cpu: { process: used.reduce((s, u) => s + u.process, 0), main: used.reduce((s, u) => s + u.main, 0), postgres: used[0]!.postgres } };
}

export async function benchParts(rows: number, file: string, firstPort: number, log: (m: string) => void): Promise<{ section: Section; result: unknown }> {
  let procs = await workers(1, { IMPORT_PARTS: "1" }, firstPort);
  log(`parts: one worker, one run, ${rows} rows`);
  const one = await measure(file, procs, "parts-one");
  await Promise.all(procs.map((p) => p.stop()));
  log(`parts: one run ${secs(one.totalMs)} cpu ${JSON.stringify(one.cpu)}`);

  procs = await workers(2, { IMPORT_PARTS: "2", IMPORT_PART_MIN_BYTES: "0" }, firstPort);
  log(`parts: two workers, two parts`);
  const two = await measure(file, procs, "parts-two");
  await Promise.all(procs.map((p) => p.stop()));
  log(`parts: two parts ${secs(two.totalMs)} cpu ${JSON.stringify(two.cpu)} counts ${JSON.stringify(two.counts)}`);

  const same = JSON.stringify(one.counts) === JSON.stringify(two.counts);
  const row = (label: string, t: Measured) => ({
    what: `${label}: ${fmt(rows)} fresh rows, upload to done`,
    figure: `${secs(t.totalMs)} (${fmt(rows / (t.totalMs / 1000))} rows/s)`,
    baseline: `one run ${secs(one.totalMs)}`,
    ratio: t.totalMs / one.totalMs,
    target: "",
  });
  const cpuRow = (label: string, t: Measured) => ({
    what: `${label}: CPU (workers; PostgreSQL)`,
    figure: `workers ${secs(t.cpu.process * 1000)}; PostgreSQL ${secs(t.cpu.postgres * 1000)}`,
    baseline: `one run: PostgreSQL ${secs(one.cpu.postgres * 1000)}`,
    ratio: t.cpu.postgres / one.cpu.postgres,
    target: "",
  });
  return {
    result: { one, two },
    section: {
      title: "8. One import across workers (IMPORT_PARTS): one run on one worker vs two parts on two worker processes",
      rows: [row("one worker, one run", one), cpuRow("one worker, one run", one), row("two workers, two parts", two), cpuRow("two workers, two parts", two)],
      notes: [
        `Each import into a new workspace; counts ${same ? "equal" : "DIFFER"}: ${JSON.stringify(two.counts)}. Each part reads the whole file (the byte scan) and validates and writes its half; one slot per worker process.`,
      ],
    },
  };
}
