/**
 * Which identifier keys a file may hold more than once: the ledger (import_people) only for keys that repeat.
 *
 * A contacts import records, for each existing person a row touched, which row that was (the ledger), so that a later
 * row of the same file for the same person finds it: the earlier row is then skipped as `duplicate_in_file`. Most
 * files name each person once, and writing and probing that ledger was ~40% of PostgreSQL's work in a re-import
 * (BENCHMARKS.md, "Imports, 2026-11-30 (fourth session)"). Before its first batch, a run reads the file's identifier
 * keys once into this sketch; a row whose key the sketch has seen only once can have no earlier or later row for its
 * person, so its batch neither probes nor writes the ledger for it.
 *
 * The sketch is two bits per slot (seen once, seen again), a slot per key hash: two keys can share a slot, which
 * makes a key that is unique look repeated (it then takes the ledger, as every row did before: slower, never wrong),
 * but a key that repeats always looks repeated. It lives in a SharedArrayBuffer, so the parse thread reads the same
 * memory. Its size follows the file's: a slot per 2 bytes, 4,096 to 2^25 slots (at most 8 MiB). A row of 30 bytes
 * then shares its slot with another key 6% of the time; a 1M-row file of 100-byte rows, 3%.
 */
import type { Db } from "../../db/client.js";
import type { Storage } from "../../storage/storage.js";
import type { BatchPlan } from "./batch-builder.js";
import { identifierKey, keyHash } from "./parts.js";
import { CsvStructureError, readRecords, type ReadFrom } from "./reader.js";
import type { Identifier } from "./targets.js";

/** `[seen once bits | seen again bits]`, over a SharedArrayBuffer. */
export type KeySketch = Uint32Array;

const MIN_SLOTS = 1 << 12;
const MAX_SLOTS = 1 << 25;

export function newKeySketch(fileBytes: number): KeySketch {
  let slots = MIN_SLOTS;
  while (slots < fileBytes / 2 && slots < MAX_SLOTS) slots *= 2;
  // Two bits per slot: slots / 16 words of 32 bits.
  return new Uint32Array(new SharedArrayBuffer(slots / 4));
}

/** The key's slot: FNV-1a mixed (murmur3's finaliser), so the keys of one part (keyHash mod n) spread over every slot. */
function slotOf(sketch: KeySketch, key: string): number {
  let h = keyHash(key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) & (sketch.length * 16 - 1);
}

export function addKey(sketch: KeySketch, key: string): void {
  const slot = slotOf(sketch, key);
  const word = slot >>> 5;
  const bit = 1 << (slot & 31);
  const again = sketch.length / 2 + word;
  if (sketch[word]! & bit) sketch[again] = sketch[again]! | bit;
  else sketch[word] = sketch[word]! | bit;
}

/** False only when no other row of the file has this key (nor any key sharing its slot). */
export function mayRepeat(sketch: KeySketch, key: string): boolean {
  const slot = slotOf(sketch, key);
  return (sketch[sketch.length / 2 + (slot >>> 5)]! & (1 << (slot & 31))) !== 0;
}

/**
 * Reads every data record of the stored file (from `dataStart`, the first row after the header) and counts its
 * identifier key. Records too large to read have no key (they fail); a malformed record ends the reading.
 */
export async function sketchFileKeys(
  storage: Storage,
  file: { storageKey: string; delimiter: string; sizeBytes: number; maxRecordBytes?: number },
  dataStart: ReadFrom,
  identifierIndex: number,
  identifier: Identifier,
): Promise<KeySketch> {
  const sketch = newKeySketch(file.sizeBytes);
  try {
    for await (const rec of readRecords(storage, file.storageKey, file.delimiter, dataStart, file.maxRecordBytes)) {
      if (rec.tooLarge) continue;
      const key = identifierKey(rec.record, identifierIndex, identifier);
      if (key !== null) addKey(sketch, key);
    }
  } catch (err) {
    // A malformed record ends the sketch where the run's own reading will stop: the rows before it are imported, as
    // without a sketch, and the run fails at the same record.
    if (!(err instanceof CsvStructureError)) throw err;
  }
  return sketch;
}

/** Sketches kept between the time slices of a run on this worker process (a run resumed elsewhere makes its own). */
const kept = new Map<string, { file: string; sketch: KeySketch | null }>();
const KEPT_MAX = 4;

/**
 * The sketch a contacts run marks its rows with, made once per run (and kept for its next time slice here), or none:
 * - for other kinds (members and events imports keep their own ledgers), and for an import that fills a createSegment
 *   segment (it adds everyone in its ledger to the segment at the end, so every row is recorded);
 * - when the workspace has no people as the run starts: every row then creates its person, and a created person's
 *   provenance (created_import_id/row) is what later rows find, not the ledger; reading the file twice would only
 *   cost time. A later slice that finds people keeps this choice: rows it marks may repeat, as without a sketch.
 * Mixing is safe either way: a row that may repeat is recorded and looks up, and a row a sketch shows unique has no
 * other row to find or be found by.
 */
export async function runKeySketch(
  db: Db,
  storage: Storage,
  plan: BatchPlan,
  run: { importId: string; part?: number; dataStart: ReadFrom; sizeBytes: number },
): Promise<KeySketch | undefined> {
  if (plan.kind !== "contacts" || plan.ctx.createdSegmentId) return undefined;
  const identifierIndex = plan.headers.indexOf(plan.ctx.headerOf[plan.ctx.identifier] ?? plan.ctx.identifier);
  const id = `${run.importId}/${run.part ?? "-"}`;
  const file = `${plan.storageKey}/${plan.ctx.identifier}/${identifierIndex}`;
  const known = kept.get(id);
  if (known?.file === file) return known.sketch ?? undefined;
  const [people] = await db.$client`select exists (select 1 from people where workspace_id = ${plan.ctx.workspaceId}) as some`;
  const sketch = people?.some
    ? await sketchFileKeys(storage, { ...plan, sizeBytes: run.sizeBytes }, run.dataStart, identifierIndex, plan.ctx.identifier)
    : null;
  kept.delete(id);
  kept.set(id, { file, sketch });
  if (kept.size > KEPT_MAX) kept.delete(kept.keys().next().value!);
  return sketch ?? undefined;
}

/** Drops a run's kept sketch: it ended, or stopped for good on this process. */
export function forgetKeySketch(importId: string, part?: number): void {
  kept.delete(`${importId}/${part ?? "-"}`);
}
