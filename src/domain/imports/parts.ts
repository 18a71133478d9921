/**
 * One import across many workers (IMPORT_PARTS): the rows are split by their identifier, not by byte ranges.
 *
 * Part `p` of `n` owns the rows whose identifier key hashes to `p` (a row without a usable key: its row number mod
 * n). Every row of one person is in one part, and each part reads the whole file in order, writing only its own
 * rows: within a part everything is as in a single run (a later row wins, `duplicate_in_file`, the ledger, undo's
 * before-images, counts), and two parts never touch the same person, so they commit in any order with the result a
 * single run gives. Only a unique value other than the identifier (two people with one external id in rows of
 * different parts) goes to the part that commits first (a single run: the earlier row).
 *
 * Each part has its own fencing token and checkpoint (import_parts), so its batch transaction locks its part row,
 * not the import's (which would serialise the parts); it adds its counts to the import's row as it commits. The
 * import's run (the coordinator, src/domain/imports/run.ts) creates the parts and queues one `import.part` job per
 * part not done; the part that commits last finishes the import. Dry runs are never split (a dry run's ledger lives
 * in its session, so it restarts from the file's start whenever it is resumed).
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../../db/client.js";
import { importParts, imports } from "../../db/schema.js";
import { importPartJobId } from "../../queue/job-ids.js";
import { emailKey, normaliseEmail } from "../people/email.js";
import type { Enqueuer } from "../runs.js";
import type { Identifier } from "./targets.js";

type ImportRow = typeof imports.$inferSelect;
export type ImportPartRow = typeof importParts.$inferSelect;

/** Which part of a split import a run writes. */
export interface PartOf {
  index: number;
  count: number;
}

/** FNV-1a (32 bits) of a string's UTF-16 code units: the same number for the same key in every process. */
export function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A record's identifier key as validation matches on it (an email as its emailKey; the cell trimmed otherwise), or
 * null when the cell is empty or no address. `identifierIndex`: the identifier column (-1: rows stand alone, as
 * events do). Any row that validates has this key (contacts/validate.ts computes it the same way, from the same cell).
 */
export function identifierKey(record: readonly string[] | undefined, identifierIndex: number, identifier: Identifier): string | null {
  const cell = identifierIndex >= 0 ? record?.[identifierIndex]?.trim() : undefined;
  if (!cell) return null;
  if (identifier !== "email") return cell;
  const email = normaliseEmail(cell);
  return email ? emailKey(email) : null;
}

/** The part a record belongs to: by its identifier key, so rows of one person share a part; a row without one by its number. */
export function partOfRecord(record: readonly string[] | undefined, row: number, identifierIndex: number, identifier: Identifier, count: number): number {
  const key = identifierKey(record, identifierIndex, identifier);
  return key === null ? row % count : keyHash(key) % count;
}

/** Creates the parts of an import (at its first batch's position); nothing when they exist. */
export async function createParts(db: Db, imp: ImportRow, count: number): Promise<void> {
  const rows = Array.from({ length: count }, (_, part) => ({
    importId: imp.id,
    part,
    parts: count,
    checkpointByte: imp.dataOffset,
    checkpointLine: imp.headerLines,
  }));
  await db.insert(importParts).values(rows).onConflictDoNothing();
}

export async function listParts(db: Db, importId: string): Promise<ImportPartRow[]> {
  return db.select().from(importParts).where(eq(importParts.importId, importId)).orderBy(importParts.part);
}

/** Queues a job for every part not done, under ids derived from the import's queued_at (a later request: new ids). */
export async function enqueueParts(producer: Enqueuer, imp: ImportRow, parts: ImportPartRow[]): Promise<number> {
  const queuedAt = imp.queuedAt ?? new Date(0);
  const open = parts.filter((p) => p.status !== "done");
  for (const p of open) {
    await producer.enqueue("import.part", { workspaceId: imp.workspaceId, importId: imp.id, part: p.part }, { jobId: importPartJobId(imp.id, p.part, queuedAt) });
  }
  return open.length;
}

/** The job ids under which a live job runs a part of this import not done yet (the reconciler's look-up). */
export async function openPartJobIds(db: Db, importIds: string[], queuedAt: Map<string, Date>): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!importIds.length) return out;
  const rows = await db
    .select({ importId: importParts.importId, part: importParts.part })
    .from(importParts)
    .where(and(inArray(importParts.importId, importIds), sql`${importParts.status} <> 'done'`));
  for (const r of rows) {
    const at = queuedAt.get(r.importId);
    if (!at) continue;
    out.set(r.importId, [...(out.get(r.importId) ?? []), importPartJobId(r.importId, r.part, at)]);
  }
  return out;
}

/**
 * Takes a part for a run: a new fencing token, while the import is processing and the part not done. Returns the
 * import and the part as claimed, or null (nothing to run).
 */
export async function claimPart(db: Db, ids: { workspaceId: string; importId: string; part: number }): Promise<{ imp: ImportRow; part: ImportPartRow } | null> {
  return db.transaction(async (tx) => {
    const [imp] = await tx
      .select()
      .from(imports)
      .where(and(eq(imports.id, ids.importId), eq(imports.workspaceId, ids.workspaceId)));
    if (!imp || imp.status !== "processing" || imp.dryRun || !imp.mapping || !imp.identifier) return null;
    const [part] = await tx
      .update(importParts)
      .set({ fence: sql`${importParts.fence} + 1`, attempts: sql`${importParts.attempts} + 1`, status: "processing", updatedAt: new Date() })
      .where(and(eq(importParts.importId, imp.id), eq(importParts.part, ids.part), sql`${importParts.status} <> 'done'`))
      .returning();
    return part ? { imp, part } : null;
  });
}

/** A part's run gave its slot up (time slice): the claim is given back to `attempts`, as for a whole run. */
export async function yieldPart(db: Db, part: Pick<ImportPartRow, "importId" | "part" | "fence">): Promise<void> {
  await db
    .update(importParts)
    .set({ attempts: sql`greatest(${importParts.attempts} - 1, 0)`, updatedAt: new Date() })
    .where(and(eq(importParts.importId, part.importId), eq(importParts.part, part.part), eq(importParts.fence, part.fence)));
}

/** A part's run found the import cannot go on: the import fails (while the part holds its fence and the import runs). */
export async function failImportOfPart(db: Db, part: Pick<ImportPartRow, "importId" | "part" | "fence">, reason: string): Promise<boolean> {
  const rows = await db
    .update(imports)
    .set({ status: "failed", failureReason: reason, finishedAt: new Date(), updatedAt: new Date() })
    .where(
      and(
        eq(imports.id, part.importId),
        eq(imports.status, "processing"),
        sql`exists (select 1 from import_parts p where p.import_id = ${part.importId} and p.part = ${part.part} and p.fence = ${part.fence})`,
      ),
    )
    .returning({ id: imports.id });
  return rows.length > 0;
}

/**
 * A part read its whole file: it is done (only while its run holds the fence). Returns whether it was the last part
 * of a still-processing import (then the caller finishes the import), "fence_lost", or "open" (parts still run, or the
 * import ended otherwise: cancelled, failed).
 */
export async function completePart(db: Db, part: Pick<ImportPartRow, "importId" | "part" | "fence">): Promise<"last" | "open" | "fence_lost"> {
  return db.transaction(async (tx) => {
    const done = await tx
      .update(importParts)
      .set({ status: "done", updatedAt: new Date() })
      .where(and(eq(importParts.importId, part.importId), eq(importParts.part, part.part), eq(importParts.fence, part.fence)))
      .returning({ part: importParts.part });
    if (!done.length) return "fence_lost";
    // The import's row lock orders the last parts: only one of them sees no part open.
    const [imp] = await tx.select({ status: imports.status }).from(imports).where(eq(imports.id, part.importId)).for("update");
    if (imp?.status !== "processing") return "open";
    const [open] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(importParts)
      .where(and(eq(importParts.importId, part.importId), sql`${importParts.status} <> 'done'`));
    return (open?.n ?? 0) === 0 ? "last" : "open";
  });
}
