import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, startTestWorkers, waitForImport, type Client } from "../helpers/api.js";
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

describe("a 100k-row import", () => {
  it("lands every row exactly, as SQL over the database shows", async () => {
    const csv = ["email,user_id,first_name,last_name,company_id,labels,score,active", ...Array.from({ length: N }, (_, i) => row(i))].join("\n") + "\n";
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
});
