import autocannon from "autocannon";
import { API_URL } from "./stack.js";
import { smallPaste } from "./data.js";
import { CONTACT_MAPPING } from "./data.js";

/** Section 5: POST /v1/imports of a small pasted CSV (start=true), as fast as it goes and at a fixed 1,000 requests/s. */

export interface EnqueueResult {
  maxRps: number;
  maxP99Ms: number;
  fixedRps: number;
  fixedP50Ms: number;
  fixedP99Ms: number;
  fixedErrors: number;
  non2xx: number;
}

const DURATION_S = Number(process.env.BENCH_ENQUEUE_SECONDS ?? 10);
const CONNECTIONS = 20;

function run(apiKey: string, rate?: number): Promise<autocannon.Result> {
  const body = JSON.stringify({ csv: smallPaste(1), kind: "contacts", identifier: "email", mapping: CONTACT_MAPPING, start: true });
  return autocannon({
    url: `${API_URL}/v1/imports`,
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: DURATION_S,
    ...(rate ? { overallRate: rate } : {}),
  });
}

export async function benchEnqueue(apiKey: string): Promise<EnqueueResult> {
  // A short warm-up so JIT and connection pools are not part of the figure.
  await autocannon({ url: `${API_URL}/healthz`, connections: 4, duration: 2 });
  const max = await run(apiKey);
  const fixed = await run(apiKey, 1000);
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
