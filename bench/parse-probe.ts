import { createWriteStream, existsSync, readdirSync, readFileSync } from "node:fs";
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
 * PROBE_KIND=events probes an events import instead, of a file it writes once (no sketch: events rows never repeat).
 */

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.PROBE_ROUNDS ?? 3);
const ON_THREAD = process.env.PROBE_THREAD !== "0";
/** PROBE_WRITE_MS: each batch is held this long before the next is asked for, as a run's statements hold it. */
const WRITE_MS = Number(process.env.PROBE_WRITE_MS ?? 0);

/** PROBE_KIND=events: an events file of BENCH_ROWS rows (email, event, occurred_at and two properties) instead. */
const KIND = process.env.PROBE_KIND === "events" ? "events" : "contacts";
const EVENT_HEADERS = ["email", "event", "occurred_at", "plan", "amount"];
const EVENT_MAPPING: Record<string, string> = { email: "email", event: "event", occurred_at: "occurred_at", plan: "property:plan", amount: "property:amount" };

async function writeEvents(target: string, rows: number): Promise<void> {
  const out = createWriteStream(target);
  out.write(EVENT_HEADERS.join(",") + "\n");
  const names = ["Signed Up", "Clicked Upgrade", "Viewed Page", "Invited Teammate"];
  for (let i = 1; i <= rows; i++) {
    const line = `user${i % 200_000}@example.com,${names[i % names.length]},2026-11-${String(1 + (i % 28)).padStart(2, "0")}T10:${String(i % 60).padStart(2, "0")}:00Z,${i % 3 ? "pro" : "free"},${i % 1000}\n`;
    if (!out.write(line)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

const file = `${KIND}-${ROWS}.csv`;
await mkdir(OUT, { recursive: true });
if (!existsSync(path.join(OUT, file))) await (KIND === "events" ? writeEvents : writeContacts)(path.join(OUT, file), ROWS);

const headers: string[] = KIND === "events" ? EVENT_HEADERS : [...CONTACT_HEADERS];
const targets = KIND === "events" ? EVENT_MAPPING : CONTACT_MAPPING;
const mapping: Record<string, MappingTarget> = Object.fromEntries(headers.map((h) => [h, (targets[h] ?? "ignore") as MappingTarget]));
const headerOf = Object.fromEntries(headers.filter((h) => parseTarget(mapping[h]!).type !== "attribute" && parseTarget(mapping[h]!).type !== "property").map((h) => [parseTarget(mapping[h]!).type, h]));
const plan: BatchPlan = {
  kind: KIND,
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
if (KIND === "contacts" && process.env.PROBE_SKETCH !== "0") {
  const started = performance.now();
  const sizeBytes = await storage.size(file);
  if (process.env.PROBE_SKETCH === "bg") {
    plan.repeats = newKeySketch(sizeBytes);
    void sketchFileKeys(storage, { storageKey: file, delimiter: ",", sizeBytes }, plan.from, headers.indexOf(headerOf.email!), "email", plan.repeats).then(() => console.log(`key sketch done: ${((performance.now() - started) / 1000).toFixed(2)} s`));
  } else plan.repeats = await sketchFileKeys(storage, { storageKey: file, delimiter: ",", sizeBytes }, plan.from, headers.indexOf(headerOf.email!), "email");
  console.log(`key sketch: ${((performance.now() - started) / 1000).toFixed(2)} s`);
}

/** CPU seconds of each of this process's threads by name (/proc/self/task/<tid>/stat: comm, utime, stime). */
function threadCpu(): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      // The main thread apart; Node 20 leaves its other threads (libuv's pool, V8's helpers) named as the process.
      const name = Number(tid) === process.pid ? "main thread" : `other threads (${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/\d+$/, "")})`;
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      byName.set(name, (byName.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended between listing and reading
    }
  }
  return byName;
}

for (let round = 1; round <= ROUNDS; round++) {
  const threads0 = threadCpu();
  const cpu = process.cpuUsage();
  const started = performance.now();
  let rows = 0;
  let failed = 0;
  let copyBytes = 0;
  for await (const { batch } of readBatches(storage, plan, ON_THREAD)) {
    rows += batch.rows;
    failed += batch.failed;
    copyBytes += batch.encoded?.copy.length ?? 0;
    if (WRITE_MS > 0) await new Promise((resolve) => setTimeout(resolve, WRITE_MS));
  }
  const used = process.cpuUsage(cpu);
  const threads = [...threadCpu()].map(([name, s]) => [name, s - (threads0.get(name) ?? 0)] as const).filter(([, s]) => s >= 0.05);
  console.log(
    `round ${round}: ${rows} rows (${failed} failed) ${ON_THREAD ? "on a parse thread" : "on this thread"}: wall ${((performance.now() - started) / 1000).toFixed(2)} s, ` +
      `CPU ${((used.user + used.system) / 1e6).toFixed(2)} s, COPY text ${(copyBytes / 1e6).toFixed(1)} MB`,
  );
  // A parse thread has ended by now: its CPU is what the threads still running do not account for.
  const living = threads.reduce((sum, [, s]) => sum + s, 0);
  console.log(`  by thread: ${threads.map(([name, s]) => `${name} ${s.toFixed(2)} s`).join(", ")}${ON_THREAD ? `; the parse thread (ended) ~${((used.user + used.system) / 1e6 - living).toFixed(2)} s` : ""}`);
}
