import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { readBatches } from "../src/domain/imports/batch-source.js";
import type { BatchPlan } from "../src/domain/imports/batch-builder.js";
import { newKeySketch, sketchFileKeys } from "../src/domain/imports/key-sketch.js";
import { importOptionsSchema } from "../src/domain/imports/mapping.js";
import { parseTarget, type MappingTarget } from "../src/domain/imports/targets.js";
import { LocalStorage } from "../src/storage/local.js";
import { CONTACT_HEADERS, CONTACT_MAPPING, writeContacts } from "./data.js";
import { OUT } from "./stack.js";

/**
 * `npm run bench:parse-probe`: the worker's side of a contacts import alone, without PostgreSQL: the bench's 1M-row
 * file (BENCH_ROWS) read, validated and encoded into batches by the code a run uses (readBatches: on a parse thread,
 * or PROBE_THREAD=0 on this thread), the batches dropped as they arrive. It reports, per round (PROBE_ROUNDS), the
 * wall time and this process's CPU (all threads), and the COPY bytes the batches hold. Not part of the bench run; start
 * it with `node --cpu-prof --cpu-prof-dir=… --import tsx bench/parse-probe.ts` for a profile of each thread.
 * The file's key sketch is read first, as a run has it once complete (PROBE_SKETCH=0: none, every row may repeat, as
 * in a fresh import; PROBE_SKETCH=bg: read beside the parsing, as a run reads it, complete after the first batches).
 */

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.PROBE_ROUNDS ?? 3);
const ON_THREAD = process.env.PROBE_THREAD !== "0";

const file = `contacts-${ROWS}.csv`;
await mkdir(OUT, { recursive: true });
if (!existsSync(path.join(OUT, file))) await writeContacts(path.join(OUT, file), ROWS);

const headers: string[] = [...CONTACT_HEADERS];
const mapping: Record<string, MappingTarget> = Object.fromEntries(headers.map((h) => [h, (CONTACT_MAPPING[h] ?? "ignore") as MappingTarget]));
const headerOf = Object.fromEntries(headers.filter((h) => parseTarget(mapping[h]!).type !== "attribute").map((h) => [parseTarget(mapping[h]!).type, h]));
const plan: BatchPlan = {
  kind: "contacts",
  ctx: {
    workspaceId: "00000000-0000-4000-8000-000000000001",
    importId: "00000000-0000-4000-8000-000000000002",
    identifier: "email",
    options: importOptionsSchema.parse({}),
    headerOf,
    createdSegmentId: null,
    dryRun: false,
  },
  headers,
  mapping,
  storageKey: file,
  delimiter: ",",
  from: { byte: Buffer.byteLength(headers.join(",") + "\n"), row: 0, line: 1 },
  batchSize: 10_000,
  fileWidth: headers.length,
};
const storage = new LocalStorage(OUT);
if (process.env.PROBE_SKETCH !== "0") {
  const started = performance.now();
  const sizeBytes = await storage.size(file);
  if (process.env.PROBE_SKETCH === "bg") {
    plan.repeats = newKeySketch(sizeBytes);
    void sketchFileKeys(storage, { storageKey: file, delimiter: ",", sizeBytes }, plan.from, headers.indexOf(headerOf.email!), "email", plan.repeats).then(() => console.log(`key sketch done: ${((performance.now() - started) / 1000).toFixed(2)} s`));
  } else plan.repeats = await sketchFileKeys(storage, { storageKey: file, delimiter: ",", sizeBytes }, plan.from, headers.indexOf(headerOf.email!), "email");
  console.log(`key sketch: ${((performance.now() - started) / 1000).toFixed(2)} s`);
}

for (let round = 1; round <= ROUNDS; round++) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let rows = 0;
  let failed = 0;
  let copyBytes = 0;
  for await (const { batch } of readBatches(storage, plan, ON_THREAD)) {
    rows += batch.rows;
    failed += batch.failed;
    copyBytes += batch.encoded?.copy.length ?? 0;
  }
  const used = process.cpuUsage(cpu);
  console.log(
    `round ${round}: ${rows} rows (${failed} failed) ${ON_THREAD ? "on a parse thread" : "on this thread"}: wall ${((performance.now() - started) / 1000).toFixed(2)} s, ` +
      `CPU ${((used.user + used.system) / 1e6).toFixed(2)} s, COPY text ${(copyBytes / 1e6).toFixed(1)} MB`,
  );
}
