import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { byProbes, personProbe } from "../../src/domain/imports/contacts/batch.js";

// Statistics that predate a workspace say it has no people: the planner then reads a probe for one person by
// (workspace, email key) through the (workspace_id, id) index and filters every person of the workspace, for every
// row of every batch. An import keeps people's statistics aware of the workspace it fills (run.ts).
const t = useTestContext({ IMPORT_BATCH_SIZE: "1000" });
let old: Client;
let fresh: Client;
let workers: WorkerPool;

beforeAll(async () => {
  old = await createClient(t.ctx, undefined, "Old");
  fresh = await createClient(t.ctx, old.app, "New");
  workers = await startTestWorkers(t.ctx);
});
afterAll(async () => {
  await workers?.close();
  await old?.app.close();
});

async function probeIndex(workspaceId: string): Promise<string> {
  const plan = await t.ctx.db.$client.unsafe(`explain (format json) select p.* from people p where p.workspace_id = $1 and p.email_key = $2 offset 0`, [workspaceId, "p1@x.io"]);
  const text = JSON.stringify(plan);
  return /"Index Name":"([^"]+)"/.exec(text)?.[1] ?? text;
}

describe("an import into a workspace the statistics do not know yet", () => {
  it("analyses people as it creates them, so the per-row probes use the unique index", async () => {
    // Long addresses make the email key index deep, as a million ordinary ones do.
    await t.ctx.db.$client`insert into people (workspace_id, email, email_key) select ${old.workspaceId}, e, e from (select repeat('o', 200) || g || '@x.io' as e from generate_series(1, 100000) g) x`;
    await t.ctx.db.$client`analyze people`;
    // The trap this guards against, as this PostgreSQL plans it before the import.
    expect(await probeIndex(fresh.workspaceId)).toBe("people_workspace_id_idx");

    const csv = ["email,first_name", ...Array.from({ length: 6000 }, (_, i) => `p${i + 1}@x.io,P${i + 1}`)].join("\n") + "\n";
    const done = await importAndWait(fresh, csv, {}, 120_000);
    expect(done.counts).toMatchObject({ created: 6000, failed: 0 });
    expect(await probeIndex(fresh.workspaceId)).toBe("people_workspace_email_key_uq");
  }, 180_000);

  it("probes through the unique index even before the statistics know the workspace (a batch planned then can meet another import filling it)", async () => {
    const another = await createClient(t.ctx, old.app, "Another");
    // The trap, for a workspace the statistics have never seen, with a literal workspace id.
    expect(await probeIndex(another.workspaceId)).toBe("people_workspace_id_idx");
    // The import's own probe, as its resolve pass runs it.
    const plan = await t.ctx.db.$client.unsafe(
      `explain (format json) select * from (select $2::text as email_key) o left join lateral (${personProbe("p.email_key", "o.email_key")}) p on true`,
      [another.workspaceId, "p1@x.io"],
    );
    expect(/"Index Name":"([^"]+)"/.exec(JSON.stringify(plan))?.[1]).toBe("people_workspace_email_key_uq");
  });
});

describe("a batch statement joining its staged rows to people by id", () => {
  it("probes people row by row (byProbes), where the staging table's statistics from an earlier batch make a merge join look cheap", async () => {
    const ws = (await createClient(t.ctx, old.app, "Ids")).workspaceId;
    await t.ctx.db.$client`insert into people (workspace_id, external_id) select ${ws}, 'x' || g from generate_series(1, 200000) g`;
    await t.ctx.db.$client`analyze people`;
    const conn = await t.ctx.db.$client.reserve();
    try {
      const q = (text: string, params: unknown[] = []) => conn.unsafe(text, params as never[]);
      // (The join is by id alone: a merge join walks the key from the first person of any workspace.)
      const [range] = await q(`select min(id)::bigint as lo, max(id)::bigint as hi from people`);
      await q(`create temp table stage_probe (row bigint, person_id bigint, outcome text)`);
      // A session's staging table is analysed once, on an early batch: its person ids at the start of the range, a
      // tenth of them changed (a 10% changed re-import) ...
      await q(`insert into stage_probe select g, $1::bigint + g, case when g % 10 = 0 then 'updated' else 'unchanged' end from generate_series(1, 2000) g`, [range!.lo]);
      await q(`analyze stage_probe`);
      // ... and a later batch holds 1,000 changed people near the end of it.
      await q(`truncate stage_probe`);
      await q(`insert into stage_probe select g, $1::bigint - 1000 + g, 'updated' from generate_series(1, 1000) g`, [range!.hi]);
      const plan = async () => JSON.stringify(await q(`explain (format json) select p.id from stage_probe s join people p on p.id = s.person_id where s.outcome = 'updated'`));
      // The trap: a merge join the planner expects to stop after the analysed ids, which walks people's key to the end.
      expect(await plan()).toContain('"Merge Join"');
      await q("begin");
      const probed = await byProbes(q, plan);
      const [inside] = await q(`select current_setting('enable_mergejoin') as merge, current_setting('enable_hashjoin') as hash`);
      await q("commit");
      expect(probed).toContain('"Nested Loop"');
      expect(probed).not.toMatch(/"(Merge|Hash) Join"/);
      // The settings are back as they were, within the transaction and after it.
      expect(inside).toEqual({ merge: "on", hash: "on" });
      const [after] = await q(`select current_setting('enable_mergejoin') as merge, current_setting('enable_hashjoin') as hash`);
      expect(after).toEqual({ merge: "on", hash: "on" });
    } finally {
      conn.release();
    }
  }, 120_000);
});
