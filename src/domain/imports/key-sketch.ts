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
  // Two bits per slot: slots / 16 words of 32 bits; then, past the sketch's own view, one word: complete (1) or not.
  const words = slots / 16;
  return new Uint32Array(new SharedArrayBuffer(words * 4 + 4), 0, words);
}

/** The word after the sketch: 1 once every key of the file is in it (sketchComplete). Shared with the parse thread. */
function completeFlag(sketch: KeySketch): Int32Array {
  return new Int32Array(sketch.buffer, sketch.byteOffset + sketch.byteLength, 1);
}

/**
 * Whether every key of the file is in the sketch: only then does a key seen once mean a row no other row shares its
 * key with. A sketch still being read (in the background: runKeySketch) marks no row.
 */
export function sketchComplete(sketch: KeySketch): boolean {
  return Atomics.load(completeFlag(sketch), 0) === 1;
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
  sketch: KeySketch = newKeySketch(file.sizeBytes),
  signal?: AbortSignal,
): Promise<KeySketch> {
  try {
    for await (const rec of readRecords(storage, file.storageKey, file.delimiter, dataStart, file.maxRecordBytes)) {
      // Stopped (the run ended before its sketch did): the sketch stays incomplete, and marks nothing.
      if (signal?.aborted) return sketch;
      if (rec.tooLarge) continue;
      const key = identifierKey(rec.record, identifierIndex, identifier);
      if (key !== null) addKey(sketch, key);
    }
  } catch (err) {
    // A malformed record ends the sketch where the run's own reading will stop: the rows before it are imported, as
    // without a sketch, and the run fails at the same record.
    if (!(err instanceof CsvStructureError)) throw err;
  }
  Atomics.store(completeFlag(sketch), 0, 1);
  return sketch;
}

/** Below this many bytes, a run reads its file's keys before its first batch (~10 ms); above, while its batches run. */
export const SKETCH_IN_BACKGROUND_MIN_BYTES = 4 * 1024 * 1024;

/**
 * Sketches kept between the time slices of a run on this worker process (a run resumed elsewhere goes on without one).
 * A run ended elsewhere leaves its entry until four newer runs push it out: at most 4 × 8 MiB.
 */
const kept = new Map<string, { file: string; sketch: KeySketch | null }>();
const KEPT_MAX = 4;

/**
 * The sketch a contacts run marks its rows with, made when the run starts at the top of its file (and kept on this
 * worker for the run's next time slice), or none:
 * - for other kinds (members and events imports keep their own ledgers), and for an import that fills a createSegment
 *   segment (it adds everyone in its ledger to the segment at the end, so every row is recorded);
 * - when the workspace holds fewer people than a tenth of the file's rows (estimated from its size and its sample
 *   rows) as the run starts: only rows that find an existing person write or probe the ledger, so there is little
 *   to save, and reading the file twice (~2.4 s per 1M rows) would cost more. An empty workspace is the common case
 *   (a first import: every row creates, and a created person's provenance is what later rows find); another is a
 *   second big import started into a new workspace just after the first. A later slice keeps this choice;
 * - for a run resumed mid-file with no sketch kept here (another worker ran it before: a crash, or its previous time
 *   slice ran elsewhere): reading the whole file again for each slice could cost more than the slice.
 * Mixing is safe: a row without a sketch may repeat, so it is recorded and looks up, and a row a sketch showed unique
 * has no other row to find or be found by.
 *
 * A file of SKETCH_IN_BACKGROUND_MIN_BYTES or more is read on this thread while the run's first batches go on (it was
 * the one serial step before a re-import's first batch: ~2.4 s per 1M rows); the batches begun before the sketch is
 * complete (sketchComplete) mark no row, so they take the ledger. `signal` stops the reading when the run ends first:
 * a sketch is kept for the run's next time slice only once complete. `onComplete` is told when it is.
 */
export async function runKeySketch(
  db: Db,
  storage: Storage,
  plan: BatchPlan,
  run: { importId: string; part?: number; dataStart: ReadFrom; from: ReadFrom; sizeBytes: number; sample: readonly (readonly string[])[] },
  background: { signal: AbortSignal; onComplete: (ms: number, bytes: number) => void; onError: (err: unknown) => void },
): Promise<KeySketch | undefined> {
  if (plan.kind !== "contacts" || plan.ctx.createdSegmentId) return undefined;
  const identifierIndex = plan.headers.indexOf(plan.ctx.headerOf[plan.ctx.identifier] ?? plan.ctx.identifier);
  const id = `${run.importId}/${run.part ?? "-"}`;
  const file = `${plan.storageKey}/${plan.ctx.identifier}/${identifierIndex}`;
  const known = kept.get(id);
  if (known?.file === file) return known.sketch ?? undefined;
  if (run.from.byte > run.dataStart.byte) return undefined;
  // Counting stops at the threshold: a workspace of millions costs no more than one at the threshold.
  const threshold = Math.max(1, Math.ceil(estimateRows(run.sizeBytes - run.dataStart.byte, run.sample, plan.delimiter) / 10));
  const [people] = await db.$client`select count(*)::int as n from (select 1 from people where workspace_id = ${plan.ctx.workspaceId} limit ${threshold}) t`;
  if (Number(people?.n) < threshold) {
    keep(id, file, null);
    return undefined;
  }
  const started = Date.now();
  const sketch = newKeySketch(run.sizeBytes);
  const reading = sketchFileKeys(storage, { ...plan, sizeBytes: run.sizeBytes }, run.dataStart, identifierIndex, plan.ctx.identifier, sketch, background.signal).then(() => {
    if (!sketchComplete(sketch) || background.signal.aborted) return;
    keep(id, file, sketch);
    background.onComplete(Date.now() - started, sketch.byteLength);
  });
  if (run.sizeBytes - run.dataStart.byte < SKETCH_IN_BACKGROUND_MIN_BYTES) await reading;
  else reading.catch(background.onError);
  return sketch;
}

function keep(id: string, file: string, sketch: KeySketch | null): void {
  kept.delete(id);
  kept.set(id, { file, sketch });
  if (kept.size > KEPT_MAX) kept.delete(kept.keys().next().value!);
}

/** Drops a run's kept sketch: it ended, or stopped for good on this process. */
export function forgetKeySketch(importId: string, part?: number): void {
  kept.delete(`${importId}/${part ?? "-"}`);
}

/** Data rows a file of `dataBytes` holds, from the average size of its sample rows (100 bytes without one). */
export function estimateRows(dataBytes: number, sample: readonly (readonly string[])[], delimiter: string): number {
  let bytes = 0;
  for (const row of sample) bytes += Buffer.byteLength(row.join(delimiter)) + 1;
  const perRow = sample.length > 0 ? bytes / sample.length : 100;
  return Math.ceil(Math.max(0, dataBytes) / Math.max(4, perRow));
}
