/**
 * A run's parse thread (batch-source.ts): produces the import's batches and posts each to the run, staying at most
 * `ahead` batches in front of the one being written ("next" from the run gives one more).
 */
import { parentPort, workerData } from "node:worker_threads";
import { LocalStorage } from "../../storage/local.js";
import type { Storage } from "../../storage/storage.js";
import { produceBatches } from "./batch-builder.js";
import { threadError, type ParseThreadData, type ThreadMessage } from "./batch-source.js";

const data = workerData as ParseThreadData;
const port = parentPort!;
let credit = data.ahead;
let wake: (() => void) | null = null;
port.on("message", () => {
  credit += 1;
  wake?.();
  wake = null;
});

const post = (m: ThreadMessage) => {
  // A batch's encoded rows (a buffer of their own: EncodedRows.copy) move to the run without a copy.
  const copy = m.type === "batch" ? m.planned.batch.encoded?.copy : undefined;
  port.postMessage(m, copy ? [copy.buffer as ArrayBuffer] : []);
};
/** Local files open at once; the S3 client (a large module) is loaded only when the files live there. */
async function openStorage(): Promise<Storage> {
  if (data.storage.STORAGE_DRIVER === "local") return new LocalStorage(data.storage.STORAGE_DIR);
  const { createStorage } = await import("../../storage/create.js");
  return createStorage(data.storage);
}

try {
  for await (const planned of produceBatches(await openStorage(), data.plan)) {
    while (credit === 0) await new Promise<void>((resolve) => (wake = resolve));
    credit -= 1;
    post({ type: "batch", planned });
  }
  post({ type: "done" });
} catch (err) {
  post({ type: "error", error: threadError(err) });
}
port.close();
