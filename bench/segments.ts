import postgres from "postgres";
import { API_URL, DATABASE_URL, benchSql } from "./stack.js";
import type { Row } from "./report.js";

/**
 * Section 3: recompute of five representative dynamic segments through the public API, each beside a plain
 * `select count(*)` with the same predicate written by hand. Needs the segments routes (branch `segments`);
 * without them the section says "not measured yet".
 */

export const EVENTS_PER_PERSON = 5;
const EVENT_NAMES = ["Clicked Upgrade", "Viewed Page", "Opened Email", "Signed In"];

/**
 * 5 events per person, set-based and deterministic (names and ages from the person id), dated from 1 hour to 90 days
 * before now and recorded when they happened (created_at = occurred_at): before the bench's imports ended, so undoing
 * those imports (section 7) does not count them as changes made since (an event recorded after an import keeps its
 * person; dated up to now, the ~35 people with an event in the minutes after the import were kept).
 */
export async function seedEvents(workspaceId: string): Promise<number> {
  // One connection, so the session setting below holds for the insert. The seed is the bench's own set-up, not a
  // measured path: the rows reference people that exist by construction, so their per-row foreign-key checks
  // (~10 µs each, ~50 s for 5M events) are skipped (session_replication_role = replica; the bench runs as a superuser).
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`set session_replication_role = replica`).catch(() => {});
    const [r] = await sql.unsafe(
      `insert into events (workspace_id, person_id, name, occurred_at, created_at, properties)
       select p.workspace_id, p.id, ($2::text[])[1 + ((p.id * 7 + g) % 4)::int], t.at, t.at, '{}'::jsonb
       from people p, generate_series(1, ${EVENTS_PER_PERSON}) g,
         lateral (select now() - interval '1 hour' - make_interval(days => ((p.id * 13 + g * 7) % 90)::int, secs => ((p.id + g) % 86400)::int) as at) t
       where p.workspace_id = $1
       order by p.id, g`,
      [workspaceId, EVENT_NAMES],
    );
    void r;
    await sql.unsafe(`analyze events`);
    const [c] = await sql`select count(*)::int as n from events where workspace_id = ${workspaceId}`;
    return c!.n as number;
  } finally {
    await sql.end();
  }
}

interface SegmentCase {
  name: string;
  conditions: (ids: Record<string, string>) => unknown;
  /** The same predicate over `people p` as hand-written SQL ($1 = workspace id). */
  countSql: string;
}

const VIP = `p.label_ids @> array[(select l.id from labels l where l.workspace_id = $1 and l.name = 'vip')]`;
const BETA = VIP.replace("'vip'", "'beta'");
const CASES: SegmentCase[] = [
  { name: "attribute: plan = pro", conditions: () => ({ field: "attributes.plan", op: "eq", value: "pro" }), countSql: `p.attributes ->> 'plan' = 'pro'` },
  { name: "label: has vip", conditions: () => ({ label: "vip", op: "has" }), countSql: VIP },
  {
    // The seeded names cycle through 4 per person over 5 events: a name occurs once or twice, so "≥ 2" selects.
    name: "event count in window: Clicked Upgrade ≥ 2 times in 30 days",
    conditions: () => ({ event: "Clicked Upgrade", op: "performed", count: { op: "gte", value: 2 }, within: { amount: 30, unit: "day" } }),
    countSql: `(select count(*) from events e where e.person_id = p.id and e.workspace_id = $1 and e.name = 'Clicked Upgrade' and e.occurred_at >= now() - interval '30 days') >= 2`,
  },
  {
    name: "nested group: (city Berlin or beta) and not plan free",
    conditions: () => ({ all: [{ any: [{ field: "attributes.city", op: "eq", value: "Berlin" }, { label: "beta", op: "has" }] }, { not: { field: "attributes.plan", op: "eq", value: "free" } }] }),
    countSql: `(p.attributes ->> 'city' = 'Berlin' or ${BETA}) and not coalesce(p.attributes ->> 'plan' = 'free', false)`,
  },
  {
    name: "segment in segment: in 'plan = pro' and has vip",
    conditions: (ids) => ({ all: [{ segment: ids.first, op: "in" }, { label: "vip", op: "has" }] }),
    countSql: `p.attributes ->> 'plan' = 'pro' and ${VIP}`,
  },
];

async function api(apiKey: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${API_URL}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** True when the running API has the segments routes (404 route_not_found otherwise). */
export async function segmentsAvailable(apiKey: string): Promise<boolean> {
  return (await api(apiKey, "GET", "/v1/segments")).status === 200;
}

/**
 * How often the client asks for the segment while it computes. Fine, so the figure is the recompute as a client
 * can see it and not the polling interval: a 50 ms poll added ~25 ms on average (and up to 50) to a 0.1 s job.
 */
const POLL_MS = 10;
/** Each recompute and each count is measured this many times, alternately; the medians are reported. */
const SAMPLES = 3;

async function waitReady(apiKey: string, id: string, after: string | null): Promise<Record<string, unknown>> {
  const until = performance.now() + 300_000;
  for (;;) {
    if (performance.now() > until) throw new Error(`segment ${id} was not recomputed within 5 minutes of the request`);
    await new Promise((r) => setTimeout(r, POLL_MS));
    const { json } = await api(apiKey, "GET", `/v1/segments/${id}`);
    if (json.status === "failed") throw new Error(`segment ${id} failed: ${JSON.stringify(json)}`);
    if (json.status === "ready" && json.lastComputedAt && json.lastComputedAt !== after) return json;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function benchSegments(apiKey: string, workspaceId: string, people: number, events: number): Promise<Row[]> {
  const rows: Row[] = [];
  const ids: Record<string, string> = {};
  const sql = benchSql();
  try {
    for (const [i, c] of CASES.entries()) {
      const created = await api(apiKey, "POST", "/v1/segments", { name: `bench ${i + 1}`, type: "dynamic", conditions: c.conditions(ids) });
      if (created.status !== 201) throw new Error(`create segment: ${created.status} ${JSON.stringify(created.json)}`);
      const id = created.json.id as string;
      if (i === 0) ids.first = id;
      let last = await waitReady(apiKey, id, null);
      // The measured runs: recomputes over a segment whose members are already there (the nightly case), each
      // followed by the count, so both see the same warm cache (the very first count also opens the connection:
      // medians, not single runs, on this shared machine).
      const recomputeMs: number[] = [];
      const txMs: number[] = [];
      const countMs: number[] = [];
      let n = 0;
      for (let s = 0; s < SAMPLES; s++) {
        const t0 = performance.now();
        const req = await api(apiKey, "POST", `/v1/segments/${id}/recompute`);
        if (req.status !== 202) throw new Error(`recompute: ${req.status} ${JSON.stringify(req.json)}`);
        last = await waitReady(apiKey, id, last.lastComputedAt as string);
        recomputeMs.push(performance.now() - t0);
        txMs.push(Number(last.lastDurationMs));
        const c0 = performance.now();
        const [cnt] = await sql.unsafe(`select count(*)::int as n from people p where p.workspace_id = $1 and (${c.countSql})`, [workspaceId]);
        countMs.push(performance.now() - c0);
        n = cnt!.n as number;
      }
      const ms = median(recomputeMs);
      const base = median(countMs);
      const same = Number(last.memberCount) === n;
      rows.push({
        what: `${c.name} (${Number(last.memberCount).toLocaleString("en-US")} members${same ? "" : `; count query says ${n}: MISMATCH`})`,
        figure: `${(ms / 1000).toFixed(2)} s`,
        baseline: `count(*) ${(base / 1000).toFixed(2)} s`,
        ratio: ms / base,
        target: "≤ 2× count",
        met: ms / base <= 2 && same,
      });
      rows.push({
        what: `${c.name}: of which the recompute's transaction (the segment's lastDurationMs)`,
        figure: `${(median(txMs) / 1000).toFixed(2)} s`,
        baseline: `count(*) ${(base / 1000).toFixed(2)} s`,
        ratio: median(txMs) / base,
        target: "",
      });
    }
  } finally {
    await sql.end();
  }
  void people;
  void events;
  return rows;
}
