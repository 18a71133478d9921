import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createClient, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { holdRow, spawnWorker } from "../helpers/faults.js";
import type { Spawned } from "../helpers/processes.js";

const t = useTestContext();
let spawned: Spawned[] = [];
let client: Client;

afterEach(async () => {
  await Promise.all(spawned.map((s) => s.kill()));
  spawned = [];
});
afterAll(async () => {
  await client?.app.close();
});

const PEOPLE = 20_000;

function worker(): Spawned {
  const w = spawnWorker(t.ctx, { DELETION_BATCH_SIZE: "1000" });
  spawned.push(w);
  return w;
}

/** Catches the deletion between two batches (each starts by locking its row): see holdRow. */
function holdAtDeleted(id: string, n: number): Promise<{ release(): Promise<void> }> {
  return holdRow(
    t.ctx,
    `deletion ${id}`,
    async (conn) => {
      const [r] = await conn`select status, deleted from deletions where id = ${id} for update`;
      return r ? { status: String(r.status), progress: Number(r.deleted) } : undefined;
    },
    { status: "processing", atLeast: n, waitable: ["queued", "processing"] },
  );
}

describe("a worker killed with SIGKILL mid-erase", () => {
  it("leaves whole batches erased; a new worker finishes the deletion with exact counts", async () => {
    client = await createClient(t.ctx, undefined, "Erase");
    await t.ctx.db.$client`
      insert into people (workspace_id, email, attributes)
      select ${client.workspaceId}, 'gone' || i || '@x.io', jsonb_build_object('cohort', 'gone') from generate_series(1, ${PEOPLE}) i`;
    await t.ctx.db.$client`insert into people (workspace_id, email) values (${client.workspaceId}, 'stays@x.io')`;
    await t.ctx.db.$client`
      insert into events (workspace_id, person_id, name)
      select workspace_id, id, 'seen' from people where workspace_id = ${client.workspaceId}`;
    const created = await client.request("POST", "/v1/deletions", { payload: { conditions: { field: "attributes.cohort", op: "eq", value: "gone" } } });
    expect(created.status).toBe(202);
    const id = created.json.id as string;

    const first = worker();
    await first.waitFor(/workers started/, 30_000);
    const hold = await holdAtDeleted(id, 3_000);
    first.child.kill("SIGKILL");
    expect((await first.exited(10_000)).signal).toBe("SIGKILL");
    await hold.release();
    const [mid] = await t.ctx.db.$client`
      select d.status, d.matched::int, d.deleted::int, (select count(*)::int from deletion_targets where deletion_id = d.id) as left,
        (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people
      from deletions d where d.id = ${id}`;
    expect(mid).toMatchObject({ status: "processing", matched: PEOPLE });
    // Whole batches: what was erased is exactly what the deletion counted and no longer has to do.
    expect(mid!.deleted % 1_000).toBe(0);
    expect(mid!.deleted).toBeLessThan(PEOPLE);
    expect(mid!.left).toBe(PEOPLE - mid!.deleted);
    expect(mid!.people).toBe(PEOPLE + 1 - mid!.deleted);

    const second = worker();
    await second.waitFor(/workers started/, 30_000);
    const until = Date.now() + 90_000;
    let res;
    do {
      res = await client.request("GET", `/v1/deletions/${id}`);
      if (res.json.status === "done" || res.json.status === "failed") break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < until);
    expect(res.json).toMatchObject({ status: "done", matched: PEOPLE, deleted: PEOPLE, failureReason: null });
    const [end] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
        (select count(*)::int from events where workspace_id = ${client.workspaceId}) as events,
        (select count(*)::int from deletion_targets) as targets,
        (select attempts from deletions where id = ${id}) as attempts`;
    expect(end).toEqual({ people: 1, events: 1, targets: 0, attempts: 2 });
  }, 180_000);
});
