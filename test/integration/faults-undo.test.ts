import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createClient, pasteImport, waitForImport, type Client } from "../helpers/api.js";
import { useTestContext } from "../helpers/context.js";
import { contactsCsv, holdRow, spawnWorker } from "../helpers/faults.js";
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

const PEOPLE = 5_000;
const BATCH = 200;

function worker(): Spawned {
  const w = spawnWorker(t.ctx, { DELETION_BATCH_SIZE: String(BATCH) });
  spawned.push(w);
  return w;
}

/** Catches the undo between two batches (each starts by locking the import row): see holdRow. */
function holdAtUndone(id: string, n: number): Promise<{ release(): Promise<void> }> {
  return holdRow(
    t.ctx,
    `the undo of ${id}`,
    async (conn) => {
      const [r] = await conn`select status, undo from imports where id = ${id} for update`;
      return r ? { status: String(r.status), progress: Number((r.undo as { deleted?: number } | null)?.deleted ?? 0) } : undefined;
    },
    { status: "undoing", atLeast: n, waitable: ["undoing"] },
  );
}

const importPeople = async (id: string) =>
  (await t.ctx.db.$client`select count(*)::int as n from people where workspace_id = ${client.workspaceId} and created_import_id = ${id}`)[0]!.n as number;

describe("a worker killed with SIGKILL mid-undo", () => {
  it("a worker killed (SIGKILL) mid-undo; a new worker finishes it with exact counts", async () => {
    client = await createClient(t.ctx, undefined, "Undo");
    await t.ctx.db.$client`insert into people (workspace_id, email) values (${client.workspaceId}, 'stays@x.io')`;
    const first = worker();
    await first.waitFor(/workers started/, 30_000);
    const created = await pasteImport(client, contactsCsv(PEOPLE, "u"), { identifier: "email", start: true });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const done = await waitForImport(client, id, 90_000);
    expect(done.status).toBe("done");
    expect(done.counts).toMatchObject({ created: PEOPLE, updated: 0 });
    expect(await importPeople(id)).toBe(PEOPLE);
    const [before] = await t.ctx.db.$client`select fence::int, attempts from imports where id = ${id}`;

    const res = await client.request("POST", `/v1/imports/${id}/undo`);
    expect(res.status).toBe(202);
    const hold = await holdAtUndone(id, 1_000);
    first.child.kill("SIGKILL");
    expect((await first.exited(10_000)).signal).toBe("SIGKILL");
    await hold.release();

    const [mid] = await t.ctx.db.$client`select status, undo, fence::int from imports where id = ${id}`;
    const midUndo = mid!.undo as { deleted: number; restored: number; kept: number };
    expect(mid).toMatchObject({ status: "undoing", fence: before!.fence + 1 });
    // Whole batches: what was erased is exactly what the undo counted.
    expect(midUndo.deleted % BATCH).toBe(0);
    expect(midUndo.deleted).toBeGreaterThanOrEqual(1_000);
    expect(midUndo.deleted).toBeLessThan(PEOPLE);
    expect(midUndo).toMatchObject({ restored: 0, kept: 0 });
    expect(await importPeople(id)).toBe(PEOPLE - midUndo.deleted);

    const second = worker();
    await second.waitFor(/workers started/, 30_000);
    const until = Date.now() + 90_000;
    let view;
    do {
      view = (await client.request("GET", `/v1/imports/${id}`)).json;
      if (view.status !== "undoing") break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < until);
    expect(view).toMatchObject({ status: "undone", undo: { deleted: PEOPLE, restored: 0, kept: 0 }, failureReason: null });
    const [end] = await t.ctx.db.$client`
      select (select count(*)::int from people where workspace_id = ${client.workspaceId}) as people,
        (select count(*)::int from import_errors where import_id = ${id} and code = 'changed_since_import') as kept_errors,
        fence::int, attempts
      from imports where id = ${id}`;
    expect(await importPeople(id)).toBe(0);
    // Only the person from outside the import stays; the second run took the fence again (the undo counts no attempts of its own).
    expect(end).toEqual({ people: 1, kept_errors: 0, fence: before!.fence + 2, attempts: before!.attempts });
  }, 240_000);
});
