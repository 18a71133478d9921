import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { clientFromEnv, type ApiClient } from "./client.js";

/** A progress stream that dropped before the import ended is followed again after this long. */
const RETRY_MS = 1_000;
const FINISHED = new Set(["done", "failed", "cancelled", "validated"]);

interface ImportView {
  id: string;
  status: string;
  filename: string | null;
  headers: string[];
  suggestedMapping: Record<string, string>;
  counts: { total: number; processed: number; created: number; updated: number; unchanged: number; skipped: number; failed: number };
  errorCount: number;
  failureReason: string | null;
  createdAt: string;
}

/** `--map 'Header=target'`, repeatable; the last '=' splits (headers may contain '='). */
export function parseMapArgs(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const at = v.lastIndexOf("=");
    if (at <= 0 || at === v.length - 1) throw new Error(`--map expects 'Header=target', got '${v}'.`);
    out[v.slice(0, at)] = v.slice(at + 1);
  }
  return out;
}

function bar(format: string): cliProgress.SingleBar {
  // Progress goes to stderr so stdout keeps only the result; without a TTY a line is printed now and then.
  return new cliProgress.SingleBar(
    { format, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 1_000, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

async function upload(client: ApiClient, file: string, kind: string): Promise<{ view: ImportView; rows: number }> {
  const qs = new URLSearchParams({ kind, filename: path.basename(file) });
  const progress = bar("upload     [{bar}] {percentage}% | {sentMiB}/{totalMiB} MiB");
  let started = false;
  let newlines = 0;
  try {
    const view = await client.uploadCsv<ImportView>(`/v1/imports?${qs}`, file, (sent, total, lines) => {
      newlines = lines;
      if (!started) {
        progress.start(total, 0, { sentMiB: mib(0), totalMiB: mib(total) });
        started = true;
      }
      progress.update(sent, { sentMiB: mib(sent) });
    });
    return { view, rows: Math.max(0, newlines - 1) };
  } finally {
    if (started) progress.stop();
  }
}

interface Progress {
  percent: number | null;
  rowsPerSecond: number | null;
  etaSeconds: number | null;
}

/**
 * Follows the import's progress stream (GET /v1/imports/:id/progress, Server-Sent Events) until the final import
 * arrives; a dropped stream is followed again after a pause.
 */
async function waitForImport(client: ApiClient, id: string, estimatedRows: number): Promise<ImportView> {
  const progress = bar("processing [{bar}] {percentage}% | {rows} rows | {status}{rate}");
  progress.start(100, 0, { status: "queued", rows: `~${estimatedRows}`, rate: "" });
  try {
    for (;;) {
      for await (const msg of client.events(`/v1/imports/${id}/progress`)) {
        if (msg.event === "progress") {
          const p = msg.data as Progress;
          const rate = p.rowsPerSecond ? ` | ${Math.round(p.rowsPerSecond)} rows/s${p.etaSeconds !== null ? `, ${Math.ceil(p.etaSeconds)} s left` : ""}` : "";
          progress.update(Math.min(100, Math.floor(p.percent ?? 0)), { status: "processing", rate });
        } else if (msg.event === "import") {
          const view = msg.data as ImportView;
          const rows = view.counts.processed;
          progress.update(FINISHED.has(view.status) && view.status !== "failed" && view.status !== "cancelled" ? 100 : progress.getProgress() * 100, { status: view.status, rows: `${rows}/${rows}`, rate: "" });
          if (FINISHED.has(view.status)) return view;
        }
      }
      await sleep(RETRY_MS);
    }
  } finally {
    progress.stop();
  }
}

function printResult(client: ApiClient, view: ImportView): void {
  const c = view.counts;
  console.log(`import ${view.id}: ${view.status}`);
  console.log(`rows ${c.processed}: created ${c.created}, updated ${c.updated}, unchanged ${c.unchanged}, skipped ${c.skipped}, failed ${c.failed}`);
  if (view.failureReason) console.log(`reason: ${view.failureReason}`);
  if (view.errorCount > 0) {
    console.log(`${view.errorCount} row error(s): ${client.baseUrl}/v1/imports/${view.id}/errors (CSV; send the API key as a Bearer token)`);
  }
}

export function registerImportCommands(program: Command): void {
  program
    .command("import")
    .argument("<file>", "the CSV file to upload")
    .description("upload a CSV, map its columns and start the import (needs ROSTER_URL and ROSTER_API_KEY)")
    .option("--kind <kind>", "contacts, members or events", "contacts")
    .option("--identifier <field>", "email, external_id or username")
    .option("--map <Header=target>", "map a column (repeatable); unmapped columns keep the suggested mapping", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--wait", "wait for the import to finish, with a progress bar; exit non-zero if it fails")
    .action(async (file: string, opts: { kind: string; identifier?: string; map: string[]; wait?: boolean }) => {
      const client = clientFromEnv();
      const overrides = parseMapArgs(opts.map);
      const { view: draft, rows } = await upload(client, file, opts.kind);
      const unknown = Object.keys(overrides).filter((h) => !draft.headers.includes(h));
      if (unknown.length) throw new Error(`--map names columns the file does not have: ${unknown.join(", ")} (columns: ${draft.headers.join(", ")}).`);
      const mapping = { ...draft.suggestedMapping, ...overrides };
      const identifier = opts.identifier ?? (["email", "external_id", "username"].find((f) => Object.values(mapping).includes(f)) as string | undefined);
      if (!identifier) throw new Error("Say which column identifies a person: --identifier email|external_id|username.");
      await client.json("PUT", `/v1/imports/${draft.id}/mapping`, { identifier, mapping });
      const started = await client.json<ImportView>("POST", `/v1/imports/${draft.id}/start`);
      if (!opts.wait) {
        console.log(`import ${started.id}: ${started.status} (follow it with: roster imports list)`);
        return;
      }
      const done = await waitForImport(client, started.id, rows);
      printResult(client, done);
      if (done.status !== "done") process.exitCode = 1;
    });

  const imports = program.command("imports").description("list imports (needs ROSTER_URL and ROSTER_API_KEY)");
  imports
    .command("list")
    .description("recent imports, newest first")
    .option("--status <status>", "only imports with this status")
    .option("--limit <n>", "how many", "20")
    .option("--json", "print the API's JSON")
    .action(async (opts: { status?: string; limit: string; json?: boolean }) => {
      const client = clientFromEnv();
      const qs = new URLSearchParams({ limit: opts.limit, ...(opts.status ? { status: opts.status } : {}) });
      const page = await client.json<{ data: ImportView[] }>("GET", `/v1/imports?${qs}`);
      if (opts.json) {
        console.log(JSON.stringify(page.data, null, 2));
        return;
      }
      if (page.data.length === 0) {
        console.log("no imports");
        return;
      }
      for (const v of page.data) {
        const c = v.counts;
        console.log(
          [v.id, v.status.padEnd(10), v.createdAt, `rows ${c.processed}`, `created ${c.created}`, `updated ${c.updated}`, `failed ${c.failed}`, v.filename ?? ""].join("  "),
        );
      }
    });
}
