import { BEFORE_IMAGE } from "../src/domain/imports/contacts/batch.js";
import type { ImportTiming } from "./client.js";
import type { Row } from "./report.js";
import { API_URL, benchSql, cpuMark, cpuSince, type CpuMark } from "./stack.js";

/**
 * The undo section: what undoing the import section's three imports costs, through the public API
 * (`POST /v1/imports/:id/undo` until `undone`), and what recording the before-images costs the import.
 *
 * The imports are undone newest first, as one rolls a workspace back: the 10%-changed one (restores its ~10% of the
 * people from their before-images, against the full table), the unchanged re-import (it recorded nothing: the fixed
 * cost of an undo), then the fresh one (erases the people it created). The people the 10%-changed import updated were
 * changed after the fresh import finished (and again by the first undo's restore), so whatever the order the fresh
 * undo keeps them (`kept`, with a `changed_since_import` error each) and erases the other ~90%: its counts say so.
 */

export interface UndoTiming {
  label: string;
  importId: string;
  ms: number;
  undo: { deleted: number; restored: number; kept: number };
  cpu: CpuMark;
}

interface ImportView {
  status: string;
  failureReason?: string | null;
  undo: UndoTiming["undo"];
}

async function api(apiKey: string, method: string, url: string): Promise<{ status: number; json: ImportView }> {
  const res = await fetch(`${API_URL}${url}`, { method, headers: { authorization: `Bearer ${apiKey}` } });
  return { status: res.status, json: (await res.json()) as ImportView };
}

/** POST /undo, then GET every 50 ms until `undone`; an undo that ends anywhere else fails the bench. */
async function timeUndo(apiKey: string, label: string, importId: string, workerPid: number): Promise<UndoTiming> {
  const m0 = await cpuMark(workerPid);
  const t0 = performance.now();
  const res = await api(apiKey, "POST", `/v1/imports/${importId}/undo`);
  if (res.status !== 202) throw new Error(`undo ${label}: ${res.status} ${JSON.stringify(res.json)}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const imp = (await api(apiKey, "GET", `/v1/imports/${importId}`)).json;
    if (imp.status === "undone") return { label, importId, ms: performance.now() - t0, undo: imp.undo, cpu: await cpuSince(m0, workerPid) };
    if (imp.status !== "undoing") throw new Error(`undo ${label} ended ${imp.status}: ${imp.failureReason}`);
  }
}

/**
 * After an undo the worker refreshes static counts and recomputes the workspace's dynamic segments (the segments
 * section's five, when it ran): waited for, so it does not run into the next undo's figure.
 */
async function segmentsSettled(workspaceId: string, timeoutMs = 30 * 60_000): Promise<void> {
  const sql = benchSql();
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const [busy] = await sql`
        select count(*)::int as n from segments where workspace_id = ${workspaceId}::uuid and type = 'dynamic'
          and (status = 'computing' or recompute_requested_at > coalesce(last_computed_at, '-infinity'))`;
      if (!busy?.n) return;
      if (Date.now() > until) throw new Error("segments still recomputing after an undo");
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await sql.end();
  }
}

/**
 * What recording the before-images cost the 10%-changed import, replayed: the same insert (the batch's `saved` CTE:
 * the same before-image expression over the same people, into import_changes with its primary key and foreign key)
 * for the same people, in the same groups as the import's batches (rows in `batchRows` blocks), inside a transaction
 * that is rolled back. Measured before that import is undone (the undo works its records off). The replay reads the
 * people by id as the CTE does; it leaves out whatever the CTE shares with the update it rides on (so it is an
 * upper bound of the in-statement cost more than a lower one).
 */
async function replayRecording(changedId: string, otherImportId: string, batchRows: number): Promise<{ ms: number; rows: number; statements: number; bytes: number }> {
  const sql = benchSql();
  try {
    const [size] = await sql`select pg_total_relation_size('import_changes')::bigint as bytes`;
    const recs = await sql`select person_id::bigint as person_id, row::bigint as row from import_changes where import_id = ${changedId}::uuid order by row`;
    const groups = new Map<number, { ids: string[]; rows: string[] }>();
    for (const r of recs) {
      const k = Math.floor((Number(r.row) - 1) / batchRows);
      const g = groups.get(k) ?? { ids: [], rows: [] };
      g.ids.push(String(r.person_id));
      g.rows.push(String(r.row));
      groups.set(k, g);
    }
    let ms = 0;
    await sql
      .begin(async (tx) => {
        for (const g of groups.values()) {
          const t0 = performance.now();
          await tx.unsafe(
            `insert into import_changes (import_id, person_id, row, before)
             select $1, p.id, s.row, ${BEFORE_IMAGE}
             from unnest($2::bigint[], $3::bigint[]) as s(person_id, row) join people p on p.id = s.person_id
             order by p.id
             on conflict (import_id, person_id) do nothing`,
            [otherImportId, g.ids, g.rows],
          );
          ms += performance.now() - t0;
        }
        throw new RolledBack();
      })
      .catch((err: unknown) => {
        if (!(err instanceof RolledBack)) throw err;
      });
    return { ms, rows: recs.length, statements: groups.size, bytes: Number(size?.bytes ?? 0) };
  } finally {
    await sql.end();
  }
}

class RolledBack extends Error {}

const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const secs = (ms: number) => `${fmt(ms / 1000, 1)} s`;

export async function benchUndo(
  ws: { id: string; apiKey: string },
  imports: { fresh: ImportTiming; again: ImportTiming; changed: ImportTiming },
  workerPid: number,
  log: (msg: string) => void,
): Promise<{ rows: Row[]; notes: string[]; result: unknown }> {
  const batchRows = Number(process.env.IMPORT_BATCH_SIZE ?? 10_000);
  log("replaying the 10%-changed import's before-image inserts (rolled back)");
  const replay = await replayRecording(imports.changed.id, imports.again.id, batchRows);
  log(`recording replay ${secs(replay.ms)} for ${replay.rows} before-images in ${replay.statements} statements`);
  const sql = benchSql();
  const [ev] = await sql`select count(*)::bigint as n from events where workspace_id = ${ws.id}::uuid`;
  await sql.end();

  const timings: UndoTiming[] = [];
  for (const [label, imp] of [
    ["10% changed", imports.changed],
    ["again (unchanged)", imports.again],
    ["fresh", imports.fresh],
  ] as const) {
    await segmentsSettled(ws.id);
    log(`undo ${label}`);
    const t = await timeUndo(ws.apiKey, label, imp.id, workerPid);
    log(`undo ${label} ${secs(t.ms)} ${JSON.stringify(t.undo)} cpu ${JSON.stringify(t.cpu)}`);
    timings.push(t);
  }
  await segmentsSettled(ws.id);

  const importOf = { "10% changed": imports.changed, "again (unchanged)": imports.again, fresh: imports.fresh };
  const rows: Row[] = timings.map((t) => {
    const people = t.undo.deleted + t.undo.restored + t.undo.kept;
    const imp = importOf[t.label as keyof typeof importOf];
    return {
      what: `undo of the ${t.label} import: POST /undo to undone (deleted ${fmt(t.undo.deleted)}, restored ${fmt(t.undo.restored)}, kept ${fmt(t.undo.kept)})`,
      figure: `${secs(t.ms)}${people ? ` (${fmt(people / (t.ms / 1000))} people/s)` : ""}; CPU worker ${secs(t.cpu.process * 1000)}, PostgreSQL ${secs(t.cpu.postgres * 1000)}`,
      baseline: `the import: worker ${secs(imp.workerMs)}`,
      ratio: t.ms / imp.workerMs,
      target: "none",
    };
  });
  rows.push({
    what: `recording the before-images of the 10% changed import (${fmt(replay.rows)} people, ${fmt(replay.statements)} inserts), replayed`,
    figure: secs(replay.ms),
    baseline: `the import: worker ${secs(imports.changed.workerMs)}`,
    ratio: replay.ms / imports.changed.workerMs,
    target: "none",
  });
  const notes = [
    "Undone newest first (10% changed, again, fresh). The people the 10% changed import updated changed after the fresh import finished, so the fresh import's undo keeps them (kept, each with a changed_since_import error) and erases the rest; the unchanged re-import recorded nothing, so its undo is the fixed cost of one.",
    `Undo runs on the deletions queue in batches of DELETION_BATCH_SIZE (${process.env.DELETION_BATCH_SIZE ?? "1000"} people); an erase takes a person's events, memberships and label links too: ${fmt(Number(ev?.n ?? 0))} events were in the workspace before the undos. The segment recompute each undo requests is waited for between undos and not counted.`,
    `Recording: the 10% changed import's before-image insert (the \`saved\` CTE of src/domain/imports/contacts/batch.ts) replayed for the same people in the same ${fmt(batchRows)}-row groups, in a transaction rolled back; the ratio is its share of the import's worker time. import_changes held ${fmt(replay.bytes / 1024 ** 2, 1)} MB (table and index) after the three imports.`,
  ];
  return { rows, notes, result: { replay, undos: timings } };
}
