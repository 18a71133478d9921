/**
 * Where a run's batches come from: produceBatches (batch-builder.ts), run on a parse thread for a file of many
 * batches, so that parsing and validating the next batch overlap the current batch's statements. On the run's own
 * thread the parser held the event loop in slices of a file chunk at a time, and every statement of the batch in
 * flight waited for its reply to be read: the two sides took turns instead of running at once (BENCHMARKS.md).
 * A small file (one batch or so) is parsed on the run's thread: starting a thread would cost more than it saves.
 */
import { Worker, type ResourceLimits } from "node:worker_threads";
import type { Storage } from "../../storage/storage.js";
import { produceBatches, type BatchPlan, type PlannedBatch } from "./batch-builder.js";
import { CsvStructureError } from "./reader.js";

/** Below this many bytes left to read, the run parses on its own thread. */
export const PARSE_THREAD_MIN_BYTES = 4 * 1024 * 1024;
/** How many batches the parse thread may run ahead of the batch being written. */
const AHEAD = 1;
/**
 * The thread's heap (old generation: IMPORT_PARSE_THREAD_HEAP_MB). A thread is a second V8 heap beside the run's: with V8's defaults the worker's peak RSS rose by
 * ~100 MB (1M rows: 310 MB on one thread, 406–420 MB with the thread); bounded, it collects sooner (258 MB). Batches
 * are built and dropped, so a small heap suffices; one that runs out (a file of huge records) is not an error of the
 * import: the run goes on parsing on its own thread from the last batch the thread handed over.
 */
export const PARSE_THREAD_HEAP_MB = 96;
const YOUNG_GENERATION_MB = 8;

/** An error as it crosses from the parse thread: its class is rebuilt where the run tells classes apart. */
interface ThreadError {
  name: string;
  message: string;
  line?: number;
  code?: unknown;
}

export type ThreadMessage = { type: "batch"; planned: PlannedBatch } | { type: "done" } | { type: "error"; error: ThreadError };

export interface ParseThreadData {
  storage: NonNullable<Storage["origin"]>;
  plan: BatchPlan;
  ahead: number;
}

/**
 * Whether a run parses on a parse thread: when `remainingBytes` (file size − checkpoint) reach `minThreadBytes`, and
 * the storage can be opened again on another thread (it has an `origin`).
 */
export function usesParseThread(storage: Storage, remainingBytes: number, minThreadBytes = PARSE_THREAD_MIN_BYTES): boolean {
  return storage.origin !== undefined && remainingBytes >= minThreadBytes;
}

/** The run's batches in file order, from a parse thread or from this thread. */
export function readBatches(storage: Storage, plan: BatchPlan, onThread: boolean, onOutOfMemory?: (row: number) => void, heapMb = PARSE_THREAD_HEAP_MB): AsyncGenerator<PlannedBatch> {
  if (!onThread || !storage.origin) return produceBatches(storage, plan);
  return threadBatches(storage, { storage: storage.origin, plan, ahead: AHEAD }, { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB, maxOldGenerationSizeMb: heapMb }, onOutOfMemory);
}

async function* threadBatches(storage: Storage, data: ParseThreadData, resourceLimits: ResourceLimits, onOutOfMemory?: (row: number) => void): AsyncGenerator<PlannedBatch> {
  // From source (tests, `npm start`) the thread loads its TypeScript through tsx, as the process does (a thread
  // does not take `--import tsx` from execArgv: it registers tsx's loader itself, then imports the entry).
  const fromSource = import.meta.url.endsWith(".ts");
  const entry = new URL(`./parse-thread.${fromSource ? "ts" : "js"}`, import.meta.url);
  const worker = fromSource
    ? new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`, { eval: true, workerData: data, resourceLimits })
    : new Worker(entry, { workerData: data, resourceLimits });
  const queue: ThreadMessage[] = [];
  let wake: (() => void) | null = null;
  const push = (m: ThreadMessage) => {
    queue.push(m);
    wake?.();
    wake = null;
  };
  worker.on("message", push);
  worker.on("error", (err: Error) => push({ type: "error", error: threadError(err) }));
  worker.on("exit", (code) => push({ type: "error", error: { name: "Error", message: `The parse thread exited (code ${code}) before the end of the file.` } }));
  let next = data.plan.from;
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const m = queue.shift()!;
      if (m.type === "done") return;
      if (m.type === "error" && m.error.code === "ERR_WORKER_OUT_OF_MEMORY") {
        onOutOfMemory?.(next.row);
        break;
      }
      if (m.type === "error") throw rebuild(m.error);
      worker.postMessage("next");
      const { batch } = m.planned;
      next = { byte: batch.endByte, row: batch.startRow + batch.rows, line: batch.endLine };
      yield m.planned;
    }
  } finally {
    worker.removeAllListeners();
    await worker.terminate();
  }
  yield* produceBatches(storage, { ...data.plan, from: next });
}

export function threadError(err: unknown): ThreadError {
  const e = err as { name?: unknown; message?: unknown; line?: unknown; code?: unknown };
  return {
    name: err instanceof CsvStructureError ? "CsvStructureError" : String(e?.name ?? "Error"),
    message: String(e?.message ?? err),
    ...(typeof e?.line === "number" ? { line: e.line } : {}),
    ...(e?.code !== undefined ? { code: e.code } : {}),
  };
}

function rebuild(e: ThreadError): Error {
  if (e.name === "CsvStructureError") return new CsvStructureError(e.message, e.line ?? 0);
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) (err as Error & { code?: unknown }).code = e.code;
  return err;
}
