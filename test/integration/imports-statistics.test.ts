import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, importAndWait, startTestWorkers, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import type { WorkerPool } from "../../src/workers/worker-pool.js";
import { personProbe } from "../../src/domain/imports/contacts/batch.js";

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
