import { createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { once } from "node:events";

/**
 * Deterministic contact files: row i always holds the same person, so a second file with the same `rows` and
 * `changedEvery: 0` is byte-identical (an unchanged re-import), and `changedEvery: 10` alters every 10th row.
 */

export const CONTACT_HEADERS = [
  "email", "external_id", "first_name", "last_name", "company", "labels",
  "plan", "score", "active", "signed_up", "city",
] as const;

/** The import mapping the bench sends: two unique keys, names, company, labels and five custom attributes. */
export const CONTACT_MAPPING: Record<string, string> = {
  email: "email",
  external_id: "external_id",
  first_name: "first_name",
  last_name: "last_name",
  company: "company_id",
  labels: "labels",
  plan: "attribute:plan",
  score: "attribute:score",
  active: "attribute:active",
  signed_up: "attribute:signed_up",
  city: "attribute:city",
};

const FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Linus"];
const LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie", "Perlman", "Torvalds"];
const CITIES = ["Berlin", "Lisbon", "Oslo", "Lyon", "Porto", "Turin", "Ghent", "Krakow", "Tallinn", "Bergen"];
const PLANS = ["free", "pro", "team", "enterprise"];
const LABELS = ["vip", "beta", "newsletter", "churn-risk", "partner", "trial", "webinar", "lead"];

/** mulberry32: a tiny seeded PRNG, so the data is the same on every run and machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** One CSV line for person i; `changed` bumps the score and moves the city, as a CRM sync would. */
export function contactLine(i: number, changed: boolean): string {
  const r = rng(i * 2654435761);
  const first = pick(r, FIRST);
  const last = pick(r, LAST);
  const labelCount = Math.floor(r() * 4);
  const labels = new Set<string>();
  for (let k = 0; k < labelCount; k++) labels.add(pick(r, LABELS));
  const plan = pick(r, PLANS);
  let score = Math.floor(r() * 1000);
  const active = r() < 0.8 ? "true" : "false";
  const day = 1 + Math.floor(r() * 28);
  const month = 1 + Math.floor(r() * 12);
  let city = pick(r, CITIES);
  if (changed) {
    score += 1;
    city = `${city} Nord`;
  }
  const signedUp = `2024-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  return `${first.toLowerCase()}.${last.toLowerCase()}.${i}@example.com,ext-${i},${first},${last},Company ${i % 5000},${[...labels].join(":")},${plan},${score},${active},${signedUp},${city}\n`;
}

/**
 * Writes `rows` contacts to `file` (every `changedEvery`-th row altered; 0: none), honouring backpressure; people
 * `first`… (another `first` gives a file of other people).
 */
export async function writeContacts(file: string, rows: number, changedEvery = 0, first = 1): Promise<number> {
  const out = createWriteStream(file);
  out.write(CONTACT_HEADERS.join(",") + "\n");
  let chunk = "";
  for (let i = first; i < first + rows; i++) {
    chunk += contactLine(i, changedEvery > 0 && i % changedEvery === 0);
    if (chunk.length >= 256 * 1024) {
      if (!out.write(chunk)) await once(out, "drain");
      chunk = "";
    }
  }
  out.end(chunk);
  await once(out, "finish");
  return (await stat(file)).size;
}

/** A small pasted CSV for the enqueue benchmark: a handful of people, different per request. */
export function smallPaste(seq: number, rows = 5): string {
  let s = CONTACT_HEADERS.join(",") + "\n";
  for (let k = 0; k < rows; k++) s += contactLine(10_000_000 + seq * rows + k, false);
  return s;
}
