import { spawn } from "node:child_process";
import path from "node:path";
import autocannon from "autocannon";
import { API_URL, ROOT, STORAGE_DIR, benchEnv } from "./stack.js";
import { smallPaste } from "./data.js";
import { CONTACT_MAPPING } from "./data.js";

/**
 * Section 5: POST /v1/imports of a small pasted CSV (start=true), as fast as it goes and at a fixed 1,000 requests/s,
 * beside a baseline measured the same way in the same run: a bare route doing the same durable work (one fsynced file,
 * one INSERT, one BullMQ add; bench/enqueue-baseline.ts). Phases alternate API / baseline, so drifting load from other
 * work on the machine falls on both.
 */

export interface EnqueueFigures {
  maxRps: number;
  maxP99Ms: number;
  fixedRps: number;
  fixedP50Ms: number;
  fixedP99Ms: number;
  fixedErrors: number;
  non2xx: number;
}

export interface EnqueueResult extends EnqueueFigures {
  baseline: EnqueueFigures;
  /** Roster ÷ baseline, unthrottled: throughput (target ≥ 0.8) and p99 (target ≤ 1.25). */
  rpsRatio: number;
  p99Ratio: number;
}

const DURATION_S = Number(process.env.BENCH_ENQUEUE_SECONDS ?? 10);
const CONNECTIONS = 20;
/**
 * Each side is warmed up the way it is then measured (20 connections) for this long first. With 2 s at 4 connections
 * the API's first measured phase still paid for its JIT (its code is larger than the baseline's): its CPU per request
 * was 20–50% above the same process's later phases, the baseline's was not.
 */
const WARM_UP_S = Number(process.env.BENCH_ENQUEUE_WARM_UP_SECONDS ?? 5);
const BASELINE_PORT = Number(process.env.BENCH_BASELINE_PORT ?? 3989);
export const BASELINE_URL = `http://127.0.0.1:${BASELINE_PORT}`;

export interface Target {
  url: string;
  headers: Record<string, string>;
}

export function run(target: Target, rate?: number, duration = DURATION_S, connections = CONNECTIONS): Promise<autocannon.Result> {
  const body = JSON.stringify({ csv: smallPaste(1), kind: "contacts", identifier: "email", mapping: CONTACT_MAPPING, start: true });
  return autocannon({
    url: target.url,
    method: "POST",
    headers: { ...target.headers, "content-type": "application/json" },
    body,
    connections,
    duration,
    ...(rate ? { overallRate: rate } : {}),
  });
}

function figures(max: autocannon.Result, fixed: autocannon.Result): EnqueueFigures {
  return {
    maxRps: max.requests.average,
    maxP99Ms: max.latency.p99,
    fixedRps: fixed.requests.average,
    fixedP50Ms: fixed.latency.p50,
    fixedP99Ms: fixed.latency.p99,
    fixedErrors: fixed.errors + fixed.timeouts,
    non2xx: max.non2xx + fixed.non2xx,
  };
}

/** Starts the baseline server (its own process, as the API is) and resolves once it answers. */
export async function startBaseline(): Promise<{ pid: number; stop(): Promise<void> }> {
  // Beside the API's uploads, in the storage directory the run starts afresh: the same file system directory tree in
  // the same state for both. (Kept apart, the baseline's directory outlived every run while the API's was deleted at
  // the start of each: on ext4 a new file is slower to create among many just-deleted inodes, up to 5 minutes after.)
  const env = benchEnv({ BASELINE_PORT: String(BASELINE_PORT), BASELINE_DIR: path.join(STORAGE_DIR, "enqueue-baseline") });
  const child = spawn(process.execPath, [...(process.env.BENCH_BASELINE_NODE_ARGS ?? "").split(" ").filter(Boolean), "--import", "tsx", path.join(ROOT, "bench", "enqueue-baseline.ts")], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  for (const end = Date.now() + 30_000; ; ) {
    if (child.exitCode !== null) throw new Error(`enqueue baseline exited: ${out}`);
    if (await fetch(`${BASELINE_URL}/healthz`).then((r) => r.ok, () => false)) return { pid: child.pid!, stop };
    if (Date.now() > end) {
      await stop();
      throw new Error(`enqueue baseline did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function benchEnqueue(apiKey: string): Promise<EnqueueResult> {
  const api: Target = { url: `${API_URL}/v1/imports`, headers: { authorization: `Bearer ${apiKey}` } };
  const base: Target = { url: `${BASELINE_URL}/enqueue`, headers: {} };
  const baseline = await startBaseline();
  try {
    // A warm-up of each, the same way, so JIT, connection pools and prepared statements are not part of the figure.
    for (const target of [api, base]) await run(target, undefined, WARM_UP_S);
    const apiMax = await run(api);
    const baseMax = await run(base);
    const apiFixed = await run(api, 1000);
    const baseFixed = await run(base, 1000);
    const own = figures(apiMax, apiFixed);
    const b = figures(baseMax, baseFixed);
    return { ...own, baseline: b, rpsRatio: own.maxRps / b.maxRps, p99Ratio: own.maxP99Ms / b.maxP99Ms };
  } finally {
    await baseline.stop();
  }
}
