import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, errorReport, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";

const t = useTestContext();
let client: Client;
let workers: WorkerPool;

beforeAll(async () => {
  client = await createClient(t.ctx);
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await client?.app.close();
});

const N = 100_000;
const LABELS = ["Marketing", "Trial", "Demo"];

/** Row i, deterministic: every 10th has no company, labels cycle through 0–3 names, score = i % 1000. */
function row(i: number): string {
  const labels = LABELS.slice(0, i % 4).join(":");
  return `user${i}@example.com,u-${i},First${i},Last${i},${i % 10 === 0 ? "" : `c${i % 50}`},${labels},${i % 1000},${i % 2 === 0 ? "true" : "false"}`;
}

const HEADER = "email,user_id,first_name,last_name,company_id,labels,score,active";

describe("a 100k-row import", () => {
  it("lands every row exactly, as SQL over the database shows", async () => {
    const csv = [HEADER, ...Array.from({ length: N }, (_, i) => row(i))].join("\n") + "\n";
    const created = await client.request("POST", "/v1/imports?identifier=email", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(created.status).toBe(201);
    const mapped = await client.request("PUT", `/v1/imports/${created.json.id}/mapping`, {
      payload: { identifier: "email", mapping: created.json.suggestedMapping, options: { attributeTypes: { score: "number", active: "boolean" } } },
    });
    expect(mapped.status, mapped.body).toBe(200);
    expect(mapped.json.mapping).toEqual({
      email: "email",
      user_id: "external_id",
      first_name: "first_name",
      last_name: "last_name",
      company_id: "company_id",
      labels: "labels",
      score: "attribute:score",
      active: "attribute:active",
    });
    await client.request("POST", `/v1/imports/${created.json.id}/start`);
    const done = await waitForImport(client, created.json.id, 240_000);
    expect(done.status).toBe("done");
    expect(done.counts).toEqual({ total: N, processed: N, created: N, updated: 0, unchanged: 0, skipped: 0, failed: 0 });

    const ws = client.workspaceId;
    const [s] = await t.ctx.db.$client`
      select count(*)::int as people,
             count(distinct external_id)::int as external_ids,
             count(company_id)::int as with_company,
             sum((attributes->>'score')::int)::bigint as score_sum,
             count(*) filter (where attributes->'active' = 'true'::jsonb)::int as active,
             count(*) filter (where jsonb_typeof(attributes->'score') = 'number')::int as numeric_scores
      from people where workspace_id = ${ws}`;
    // 0..999 repeated 100 times: 100 * (999 * 1000 / 2).
    expect(s).toEqual({ people: N, external_ids: N, with_company: N - N / 10, score_sum: String(100 * 499_500), active: N / 2, numeric_scores: N });
    const links = await t.ctx.db.$client`
      select l.name, count(*)::int as n from people p cross join unnest(p.label_ids) lid join labels l on l.id = lid
      where l.workspace_id = ${ws} group by l.name order by l.name`;
    // Label k is on rows with i % 4 > k: Marketing on 3/4, Trial on 2/4, Demo on 1/4.
    expect(links).toEqual([
      { name: "Demo", n: N / 4 },
      { name: "Marketing", n: (3 * N) / 4 },
      { name: "Trial", n: N / 2 },
    ]);
    const [p] = await t.ctx.db.$client`select email, external_id, first_name, last_name, company_id, attributes from people where workspace_id = ${ws} and external_id = 'u-77777'`;
    expect(p).toEqual({ email: "user77777@example.com", external_id: "u-77777", first_name: "First77777", last_name: "Last77777", company_id: "c27", attributes: { score: 777, active: false } });
    const [ev] = await t.ctx.db.$client`select count(*)::int as n, count(distinct person_id)::int as people from events where import_id = ${done.id} and name = 'person.created'`;
    expect(ev).toEqual({ n: N, people: N });
  }, 300_000);

  it("re-imported with three people repeated at its end: the file's keys are read while the first batches run, and the counts stay exact", async () => {
    // Over SKETCH_IN_BACKGROUND_MIN_BYTES (key-sketch.ts): the run reads the file's keys while its first batches go on,
    // so rows of batches begun before the sketch is complete take the ledger, and later ones only if their key repeats.
    // Either way each repeated person's earlier row is skipped and the last one wins.
    const repeated = [1, 50_000, N - 2];
    const again = repeated.map((i) => row(i).replace(`First${i},`, `Again${i},`));
    const csv = [HEADER, ...Array.from({ length: N }, (_, i) => row(i)), ...again].join("\n") + "\n";
    expect(Buffer.byteLength(csv)).toBeGreaterThan(4 * 1024 * 1024);
    const mapping = { email: "email", user_id: "external_id", first_name: "first_name", last_name: "last_name", company_id: "company_id", labels: "labels", score: "attribute:score", active: "attribute:active" };
    const created = await client.request("POST", "/v1/imports?identifier=email", { payload: csv, headers: { "content-type": "text/csv" } });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const sketched = t.ctx.logs.filter((l) => l.includes("import has its file's key sketch")).length;
    const mapped = await client.request("PUT", `/v1/imports/${id}/mapping`, { payload: { identifier: "email", mapping, options: { attributeTypes: { score: "number", active: "boolean" } } } });
    expect(mapped.status, mapped.body).toBe(200);
    await client.request("POST", `/v1/imports/${id}/start`);
    const done = await waitForImport(client, id, 240_000);
    expect(done.counts).toEqual({ total: N + 3, processed: N + 3, created: 0, updated: 3, unchanged: N - 3, skipped: 3, failed: 0 });
    expect(t.ctx.logs.filter((l) => l.includes("import has its file's key sketch")).length).toBe(sketched + 1);
    expect((await errorReport(client, id)).map((e) => [e.row, e.code])).toEqual(repeated.map((i) => [String(i + 1), "duplicate_in_file"]));
    const people = await t.ctx.db.$client`select external_id, first_name from people where workspace_id = ${client.workspaceId} and first_name like 'Again%' order by external_id`;
    expect(people).toEqual(repeated.map((i) => ({ external_id: `u-${i}`, first_name: `Again${i}` })).sort((a, b) => (a.external_id < b.external_id ? -1 : 1)));
    const [ledger] = await t.ctx.db.$client`select count(*)::int as n from import_people where import_id = ${id}`;
    expect(ledger?.n).toBe(0);
  }, 300_000);
});
