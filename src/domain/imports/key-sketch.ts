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
 * The sketch is two bits per slot (seen once, seen again), and each key marks two slots, chosen by two mixes of its
 * hash. A key looks repeated when both its slots were seen again: other keys may have hit both, which makes a key
 * that is unique look repeated (it then takes the ledger, as every row did before: slower, never wrong), but a key
 * that repeats always looks repeated. It lives in a SharedArrayBuffer, so the parse thread reads the same memory. Its
 * size follows the file's: a slot per 2 bytes, 4,096 to 2^25 slots (at most 8 MiB). A unique key of a file of 30-byte
 * rows then looks repeated 1.6% of the time (6% with one slot a key); of a 1M-row file of 100-byte rows, 0.3% (3%):
 * in a 10,000-row batch, ~30 rows take the ledger instead of ~300.
 */
import type { Db } from "../../db/client.js";
import type { Storage } from "../../storage/storage.js";
import type { BatchPlan } from "./batch-builder.js";
import { identifierKey, keyHash } from "./parts.js";
import { CsvStructureError, readRecords, type ReadFrom } from "./reader.js";
import { restoreCell } from "../../lib/spreadsheet-safe.js";
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

/** Says every key of the file is in the sketch (sketchComplete). */
export function markComplete(sketch: KeySketch): void {
  Atomics.store(completeFlag(sketch), 0, 1);
}

/** The second slot's mix starts from the hash xor this (any odd constant that is not the first's 0). */
const SECOND = 0x9e3779b9;

/**
 * A key's slot: FNV-1a (keyHash) mixed by murmur3's finaliser, so the keys of one part (keyHash mod n) spread over
 * every slot; `seed` 0 gives its first slot, SECOND its second.
 */
function slotOfHash(sketch: KeySketch, hash: number, seed: number): number {
  let h = hash ^ seed;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) & (sketch.length * 16 - 1);
}

export function addKey(sketch: KeySketch, key: string): void {
  addHash(sketch, keyHash(key));
}

function addHash(sketch: KeySketch, hash: number): void {
  addSlot(sketch, slotOfHash(sketch, hash, 0));
  addSlot(sketch, slotOfHash(sketch, hash, SECOND));
}

function addSlot(sketch: KeySketch, slot: number): void {
  const word = slot >>> 5;
  const bit = 1 << (slot & 31);
  const again = sketch.length / 2 + word;
  if (sketch[word]! & bit) sketch[again] = sketch[again]! | bit;
  else sketch[word] = sketch[word]! | bit;
}

/** False only when no other row of the file has this key (nor other keys hitting both its slots). */
export function mayRepeat(sketch: KeySketch, key: string): boolean {
  return hashMayRepeat(sketch, keyHash(key));
}

/** mayRepeat for a key's keyHash. */
export function hashMayRepeat(sketch: KeySketch, hash: number): boolean {
  return seenAgain(sketch, slotOfHash(sketch, hash, 0)) && seenAgain(sketch, slotOfHash(sketch, hash, SECOND));
}

function seenAgain(sketch: KeySketch, slot: number): boolean {
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
  let from = dataStart;
  // (A file with no data rows has nothing to read: a read starting at its end is refused.)
  if (dataStart.byte < file.sizeBytes && file.delimiter.length === 1 && file.delimiter.charCodeAt(0) < 0x80) {
    const source = (await storage.read(file.storageKey, { start: dataStart.byte })) as AsyncIterable<Buffer> & { destroy?: () => void };
    try {
      const stop = await sketchPlainLines(source, file.delimiter.charCodeAt(0), dataStart.byte, identifierIndex, identifier, sketch, signal);
      if (stop === null) {
        if (!signal?.aborted) markComplete(sketch);
        return sketch;
      }
      // Row and line numbers do not matter here: only the keys are counted.
      from = { byte: stop, row: 0, line: 0 };
    } finally {
      source.destroy?.();
    }
  }
  if (await sketchRecords(storage, file, from, identifierIndex, identifier, sketch, signal)) markComplete(sketch);
  return sketch;
}

/**
 * The file's keys from `from` on as the record reader gives its records (what validation reads); false when stopped.
 * Exported for the tests, which hold the fast path (sketchPlainLines) to it.
 */
export async function sketchRecords(
  storage: Storage,
  file: { storageKey: string; delimiter: string; maxRecordBytes?: number },
  from: ReadFrom,
  identifierIndex: number,
  identifier: Identifier,
  sketch: KeySketch,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    for await (const rec of readRecords(storage, file.storageKey, file.delimiter, from, file.maxRecordBytes)) {
      // Stopped (the run ended before its sketch did): the sketch stays incomplete, and marks nothing.
      if (signal?.aborted) return false;
      if (rec.tooLarge) continue;
      const key = identifierKey(rec.record, identifierIndex, identifier);
      if (key !== null) addKey(sketch, key);
    }
  } catch (err) {
    // A malformed record ends the sketch where the run's own reading will stop: the rows before it are imported, as
    // without a sketch, and the run fails at the same record.
    if (!(err instanceof CsvStructureError)) throw err;
  }
  return true;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const APOSTROPHE = 0x27;
const MAX_PLAIN_LINE_BYTES = 1024 * 1024;

/**
 * sketchFileKeys' fast path: the file's lines while no quote appears, the identifier cell found by its delimiters and
 * hashed straight from the bytes when it is plain (printable ASCII, no leading apostrophe, no IDNA label in an email:
 * then its key is the trimmed cell, lower-cased for an email, exactly as identifierKey makes it). Any other cell is
 * decoded and keyed by identifierKey, as the record reader would give it. A line the reader would not import (too
 * large, ragged, an invalid address) may add a key: that only makes another key look repeated, never the reverse.
 * Returns null at the end of the file, or the offset of the first line holding a quote (a quoted cell may hold line
 * breaks, which only the record reader tells apart) or longer than 1 MiB: every line before it was a whole record.
 */
async function sketchPlainLines(
  source: AsyncIterable<Buffer>,
  delim: number,
  start: number,
  identifierIndex: number,
  identifier: Identifier,
  sketch: KeySketch,
  signal?: AbortSignal,
): Promise<number | null> {
  const email = identifier === "email";
  const addCell = (buf: Buffer, s: number, e: number): void => {
    // Trimmed as String.prototype.trim trims ASCII (a line holds no CR or LF).
    let cs = s;
    let ce = e;
    while (cs < ce && (buf[cs] === 0x20 || (buf[cs]! >= 0x09 && buf[cs]! <= 0x0c))) cs++;
    while (ce > cs && (buf[ce - 1] === 0x20 || (buf[ce - 1]! >= 0x09 && buf[ce - 1]! <= 0x0c))) ce--;
    if (cs === ce) return;
    let plain = buf[cs] !== APOSTROPHE;
    let h = 0x811c9dc5;
    for (let i = cs; plain && i < ce; i++) {
      let b = buf[i]!;
      if (b > 0x7e || b < (email ? 0x21 : 0x20)) plain = false;
      else if (email) {
        // An IDNA label (xn--, after the start, a dot or the @) takes the slow path, as emailKey does.
        if ((b | 0x20) === 0x78 && i + 3 < ce && (i === cs || buf[i - 1] === 0x2e || buf[i - 1] === 0x40) && (buf[i + 1]! | 0x20) === 0x6e && buf[i + 2] === 0x2d && buf[i + 3] === 0x2d) plain = false;
        if (b >= 0x41 && b <= 0x5a) b += 0x20;
      }
      h = Math.imul(h ^ b, 0x01000193);
    }
    if (plain) return addHash(sketch, h >>> 0);
    const key = identifierKey([restoreCell(buf.toString("utf8", s, e))], 0, identifier);
    if (key !== null) addKey(sketch, key);
  };
  const addLine = (buf: Buffer, s: number, e: number): void => {
    let cs = s;
    for (let k = 0; k < identifierIndex; k++) {
      while (cs < e && buf[cs] !== delim) cs++;
      if (cs === e) return;
      cs++;
    }
    let ce = cs;
    while (ce < e && buf[ce] !== delim) ce++;
    addCell(buf, cs, ce);
  };

  let carry: Buffer | null = null;
  /** File offset of buf[0], always the start of a line. */
  let base = start;
  for await (const chunk of source) {
    if (signal?.aborted) return null;
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const quote = buf.indexOf(QUOTE);
    // Lines end before the first quote's line.
    let limit = buf.length;
    if (quote !== -1) {
      limit = quote;
      while (limit > 0 && buf[limit - 1] !== LF && buf[limit - 1] !== CR) limit--;
    }
    let pos = 0;
    let nextLf = buf.indexOf(LF);
    let nextCr = buf.indexOf(CR);
    for (;;) {
      if (nextLf !== -1 && nextLf < pos) nextLf = buf.indexOf(LF, pos);
      if (nextCr !== -1 && nextCr < pos) nextCr = buf.indexOf(CR, pos);
      const end = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);
      if (end === -1 || end >= limit) break;
      if (end > pos) addLine(buf, pos, end);
      pos = end + 1;
    }
    if (quote !== -1) return base + limit;
    carry = pos < buf.length ? buf.subarray(pos) : null;
    base += pos;
    // A line this long is the record reader's to read (in bounded pieces, skipping a record over its limit).
    if (carry && carry.length > MAX_PLAIN_LINE_BYTES) return base;
  }
  // The last line, without a line break.
  if (carry) addLine(carry, 0, carry.length);
  return null;
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
