import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { clientFromEnv } from "./client.js";

/** How often --wait asks for the export's status. */
const POLL_MS = 500;

interface ExportView {
  id: string;
  status: string;
  rowCount: number | null;
  sizeBytes: number | null;
  failureReason: string | null;
}

interface SegmentView {
  id: string;
  name: string;
  type: "dynamic" | "static";
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerExportCommands(program: Command): void {
  const exp = program.command("export").description("export data to CSV (needs ROSTER_URL and ROSTER_API_KEY)");
  exp
    .command("users")
    .description("export people to CSV; with --wait, download it to --out when done")
    .option("--out <file>", "where to write the CSV (implies --wait)")
    .option("--wait", "wait for the export to finish; exit non-zero if it fails")
    .option("--column <name>", "a column (repeatable): native fields, labels, segments, attributes.<key>", collect, [] as string[])
    .option("--segment <id>", "only the members of this segment")
    .option("--gzip", "gzip the file")
    .action(async (opts: { out?: string; wait?: boolean; column: string[]; segment?: string; gzip?: boolean }) => {
      const client = clientFromEnv();
      const body = {
        kind: "users",
        ...(opts.column.length ? { columns: opts.column } : {}),
        ...(opts.segment ? { segmentId: opts.segment } : {}),
        ...(opts.gzip ? { gzip: true } : {}),
      };
      let view = await client.json<ExportView>("POST", "/v1/exports", body);
      if (!opts.wait && !opts.out) {
        console.log(`export ${view.id}: ${view.status}`);
        return;
      }
      while (view.status === "queued" || view.status === "processing") {
        await sleep(POLL_MS);
        view = await client.json<ExportView>("GET", `/v1/exports/${view.id}`);
      }
      console.log(`export ${view.id}: ${view.status}${view.rowCount !== null ? `, ${view.rowCount} rows` : ""}`);
      if (view.status !== "done") {
        if (view.failureReason) console.log(`reason: ${view.failureReason}`);
        process.exitCode = 1;
        return;
      }
      if (opts.out) {
        const bytes = await client.download(`/v1/exports/${view.id}/download`, opts.out);
        console.log(`wrote ${bytes} bytes to ${opts.out}`);
      }
    });
}

export function registerSegmentCommands(program: Command): void {
  const seg = program.command("segments").description("segments (needs ROSTER_URL and ROSTER_API_KEY)");
  seg
    .command("recompute")
    .argument("[ids...]", "segment ids")
    .option("--all", "every dynamic segment of the workspace")
    .description("queue a recompute of the given segments, or of every dynamic segment with --all")
    .action(async (ids: string[], opts: { all?: boolean }) => {
      const client = clientFromEnv();
      if (!opts.all && ids.length === 0) throw new Error("Name segment ids, or use --all.");
      let targets = ids;
      if (opts.all) {
        targets = [];
        let cursor: string | null = null;
        do {
          const qs = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
          const page: { data: SegmentView[]; nextCursor: string | null } = await client.json("GET", `/v1/segments?${qs}`);
          targets.push(...page.data.filter((s) => s.type === "dynamic").map((s) => s.id));
          cursor = page.nextCursor;
        } while (cursor);
      }
      for (const id of targets) {
        await client.json("POST", `/v1/segments/${id}/recompute`);
        console.log(`segment ${id}: recompute queued`);
      }
      console.log(`${targets.length} segment(s) queued`);
    });
}
